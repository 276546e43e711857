import pytest
import torch

from msta_cli.core.errors import InputError
from msta_cli.core.training.distributed import resolve_device


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_a_gpu_asked_for_where_there_is_none_is_an_input_error(device):
    with pytest.raises(InputError, match=rf"^run.device {device}: CUDA is not available on this machine; use run.device cpu$"):
        resolve_device(device)
