"""The dataset contract (tasks, splits, metadata, masks) and the datasets: synthetic fundus images, MedMNIST, class folders, label CSVs. Imports no other stage."""
