"""Tools beside the pipeline (not stages of it): they drive `dvc` and `git` from outside."""
