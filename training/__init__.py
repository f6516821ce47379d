"""Command-line training, evaluation and publishing for the twrvae models (run the scripts, e.g. training/train.py)."""
