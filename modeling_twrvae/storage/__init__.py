"""Folders that commands write into: the lock that keeps two commands out of one folder, and the clean-up of what an
interrupted write left. Library code: it does not travel with a model."""
