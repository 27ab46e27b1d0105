"""s4train: the training side of s4listen.

Trains the keyword model that the Swift engine runs and writes its model file
(docs/model-format.md). A run is described by a recipe file (recipes/default.toml is the
shipped model's) and started with `python -m s4train train RECIPE`.

Layout, from the bottom up: `ops` (pure tensor functions: S4 inits, kernels, convolutions,
frames), `modules` (the SSM layers and the residual block), `models` (the stages network of
format 2, and the format-1 network the Swift fixtures still use), `data` (clips, augmentation,
resampling), `teacher` (the pretrained speech-embedding teacher and its cache), `distill` (the
loss), `loop` with `checkpoint`, `evaluate` and `phase_book` (a training phase; `phase_book`
serves the stream phase too), `export` (the model file), `recipe` (a run's settings).
Importing the package imports no torch: `vocabulary` serves the evaluation tools as well.
"""
