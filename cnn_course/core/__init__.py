"Where the course keeps its files, its errors, images, the folder layout of a dataset and downloads: no torch."
