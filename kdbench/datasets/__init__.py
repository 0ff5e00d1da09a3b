"""Dataset loaders: MedMNIST files, folders of images sorted by class, and label CSVs."""
