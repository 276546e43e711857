"""A seeded procedural world of coloured shapes: stills for pre-training msta-tiny, action videos for MSTA."""
