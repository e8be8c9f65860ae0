"Everything a lesson or a learner's notebook uses, in one import: `from cnn_course.all import *` (as `fastai.vision.all`)."
# Written by hand, as fastai's `all.py` files are: nbdev exports each module's `__all__`, and this file gathers them.
# No name may come from two modules with different meanings (tests/test_imports.py checks it); grading's class-wide
# commands and the CLI's hooks (`add_commands`) are left out: they are the instructor's, not the learner's.
from .core.basics import *
from .core.images import *
from .core.layout import *
from .data.registry import *
from .data.fetch import *
from .data.loaders import *
from .data.checks import *
from .models.backbones import *
from .models.classifier import *
from .models.weights import *
from .models.ntsnet import *
from .inference.outputs import *
from .inference.runs import *
from .evaluation.metrics import *
from .evaluation.evaluate import *
from .evaluation.figures import *
from .evaluation.report import *
from .evaluation.compare import *
from .evaluation.rubric import *
from .training.learner import *
from .training.features import *
from .training.lr_finder import *
from .training.recipes import *
from .course.exercises import *
from .course.lessons import *
from .course.widgets import *
from .course.explorers import *
from .course.foundations import *
from .course.graded_runs import *
from .course.own_photos import *
from .grading.notebooks import *
from .grading.project import *
del add_commands  # noqa: F821  (each command module's hook for `cnn-course`, brought in by the star imports above)
