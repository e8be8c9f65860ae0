"Datasets: the registry, getting and laying them out, checking them, and fastai DataLoaders over them."
