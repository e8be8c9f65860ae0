"""Every threshold a graded run must reach is fair: a run as good as the course's own reference passes it at least 95% of
the time on a hidden test set of the stated size, counting test-set sampling noise and the run-to-run spread measured
over seeds. The reference numbers are read from bench/results (never typed here)."""
import json, math
from pathlib import Path
import numpy as np, pytest
from cnn_course.grading.answers import LESSON_DATA
from cnn_course.course.graded_runs import GOALS, pass_threshold

RESULTS = Path(__file__).parents[1]/'bench'/'results'
# The datasets of bench/time_to_accuracy.py's seeds; two lessons run a variant of one (fashion5: five of clothing's
# classes merged; grocery10: ten of grocery's classes), whose spread stands in for theirs.
SPREAD_OF = {'flowers': 'flowers', 'fashion5': 'clothing', 'anime': 'anime', 'grocery10': 'grocery', 'clothing': 'clothing',
             'sports100': 'sports100'}

def _reference() -> dict:
    "{exercise: what the newest full run of its lesson measured on the public test split} (bench/lessons.py)."
    out = {}
    for f in sorted(RESULTS.glob('lessons*.json')):
        for r in json.loads(f.read_text()).get('lessons', []):
            for ex, t in (r.get('thresholds') or {}).items():
                if 'value' in t: out[ex] = t
    return out

def _spread() -> dict:
    "{dataset: standard deviation of the head's test accuracy over bench/time_to_accuracy.py's seeds}."
    t = json.loads((RESULTS/'time_to_accuracy.json').read_text())
    return {r['dataset']: float(np.std(r['head_only_per_seed'], ddof=1)) for r in t['table']}

@pytest.mark.parametrize('ex', sorted(GOALS))
def test_a_reference_quality_run_passes_95_percent_of_the_time(ex):
    goal, ref = GOALS[ex], _reference()
    assert ex in ref, f'bench/results/lessons*.json has no measurement of {ex} ({goal.run}): run bench/lessons.py'
    p, n = ref[ex]['value'], goal.n_hidden or ref[ex]['n']
    sd = _spread().get(SPREAD_OF.get(LESSON_DATA.get(int(ex.split('.')[0])), ''), 0.)
    fair = pass_threshold(p, n, sd)
    assert goal.threshold <= fair, (f'{ex}: the threshold {goal.threshold:.0%} is above {fair:.1%}, which a run like the '
                                    f'reference ({p:.1%} on {ref[ex]["n"]} test photos, spread {sd:.1%} over seeds) '
                                    f'reaches 95% of the time on {n}')

def test_the_spread_is_measured_on_at_least_three_seeds():
    t = json.loads((RESULTS/'time_to_accuracy.json').read_text())
    assert all(len(r['head_only_per_seed']) >= 3 for r in t['table'])
    assert set(SPREAD_OF.values()) <= {r['dataset'] for r in t['table']}

def test_pass_threshold_against_a_simulation():
    "95% of simulated reference runs (spread over seeds, then a binomial hidden set) reach the threshold."
    rng = np.random.default_rng(0)
    p, n, sd = 0.9, 400, 0.01
    t = pass_threshold(p, n, sd)
    scores = rng.binomial(n, np.clip(rng.normal(p, sd, 200_000), 0, 1))/n
    assert math.isclose((scores >= t).mean(), 0.95, abs_tol=0.01)
