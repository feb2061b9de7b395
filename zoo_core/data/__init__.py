"""Datasets by name: the built-ins (registered by the core through the ``zoo_datasets``
hook) and those that plugins add the same way.

```python
from zoo_core.data import load_dataset

data = load_dataset("fashion-mnist", split="train")
data.x  # (60000, 1, 28, 28) float32 in [0, 1]
data.y  # (60000,) int64
data.fingerprint  # sha256 over name, split, file hashes (and generator parameters)
```

Importing this package does not import torch; loading a split does.
"""

from zoo_core.data.loading import dataset_spec, list_datasets, load_dataset
from zoo_core.dataset import Dataset, DatasetSpec, SplitData

__all__ = ["Dataset", "DatasetSpec", "SplitData", "dataset_spec", "list_datasets", "load_dataset"]
