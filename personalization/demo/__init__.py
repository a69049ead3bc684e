"""The demo corpus (`data/`) and `seed_demo`, which turns it into a demo study with accounts."""
