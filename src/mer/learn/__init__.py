"""MSCNN learning: 10x augmentation, HDF5 shards and their reader, the model, LOSO training,
prediction of a new clip."""
