//! Datasets, preprocessing, augmentations and SimMIM masks for vit-burn.
