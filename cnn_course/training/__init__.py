"fastai's Learner made fast on a CPU: the CachedBody callback, the learning-rate finder, recipes and their commands."
