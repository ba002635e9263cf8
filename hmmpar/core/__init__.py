"""The runtime every application shares: farm, checkpoints, config, RNG, logging, timing."""
