from msta_cli.cli import main

main()
