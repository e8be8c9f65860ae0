"Backbones as plain data, their bodies and pretrained weights, and classifiers with named parts (body, pool, head)."
