"Distributed training: two CPU processes (gloo) launched by `accelerate launch`, through fastai's `distrib_ctx`."
import json, os, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pytest, torch
import torch.distributed as dist
from cnn_course.data.fetch import make_shapes
from cnn_course.evaluation.evaluate import evaluate
from cnn_course.inference.runs import load_run
from cnn_course.training.distrib import NEED_LR, distributed, distrib_overrides, is_main, launch_cmd, rank, require_lr, world_size

ACCELERATE = Path(sys.executable).parent/'accelerate'
NPROC = 2

SCRIPT = r'''
import json, sys
from pathlib import Path
import numpy as np, torch
from fastai.vision.all import Callback, set_seed
from cnn_course.data.loaders import get_dls
from cnn_course.training.distrib import distributed, is_main, rank, unwrap, world_size
from cnn_course.training.features import quiet
from cnn_course.training.learner import course_learner
from cnn_course.training.recipes import fit_recipe, recipe_for

class CountBatches(Callback):
    "Training batches this process ran."
    def before_fit(self): self.n = 0
    def after_batch(self):
        if self.training: self.n += 1

data, out = Path(sys.argv[1]), Path(sys.argv[2])
set_seed(0, reproducible=True)
recipe = recipe_for('simple_cnn', pretrained=False, size=32, bs=16, epochs=1, lr=3e-3)
dls = get_dls('shapes', data, recipe.size, recipe.bs, workers=0, seed=0, aug=False)
learn = quiet(course_learner(dls, 'simple_cnn', pretrained=False, head=recipe.head))  # as `train` builds it
learn.recipe, count, res = recipe, CountBatches(), {}
with distributed(learn):
    learn.fit_one_cycle(1, recipe.lr, cbs=[count])
    rows = list(learn.epoch_log.rows)  # `course_learner`'s history callback
    preds, targs = learn.get_preds(dl=learn.dls.valid)  # every process calls it: gathered over both shards
    model = unwrap(learn.model).eval()
    with torch.no_grad():  # the whole valid set in this process with plain PyTorch: the reference for the gathered preds
        ref = torch.cat([model(xb.as_subclass(torch.Tensor)).softmax(1) for xb, _ in learn.dls.valid])
    np.save(out/f'weights{rank()}.npy', torch.cat([p.detach().flatten() for p in model.parameters()]).numpy())
    try:
        fit_recipe(learn, recipe.lr)  # what `train` runs, with its callbacks (KeepBest, EpochLog, FiniteGuard)
        res['train_callbacks_error'] = None
    except Exception as e: res['train_callbacks_error'] = f'{type(e).__name__}: {e}'[:300]
    res['initialized_inside'] = torch.distributed.is_initialized()
res.update(rank=rank(), world_size=world_size(), batches=count.n, batches_one_process=len(dls.train),
           model_after=type(learn.model).__name__, initialized_after=torch.distributed.is_initialized(),
           n_valid=len(dls.valid_ds), n_preds=len(preds), valid_accuracy=float((preds.argmax(1) == targs).float().mean()),
           max_pred_diff=float((preds - ref).abs().max()), targets_in_order=targs.tolist() == [int(y) for _, y in dls.valid_ds],
           ref_accuracy=float((ref.argmax(1) == torch.tensor([int(y) for _, y in dls.valid_ds])).float().mean()),
           history=rows)
(out/f'rank{rank()}.json').write_text(json.dumps(res))
'''

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _skip_reason():
    if not dist.is_available() or not dist.is_gloo_available(): return 'torch.distributed with the gloo backend is not available'
    if not ACCELERATE.exists(): return f'accelerate is not installed next to {sys.executable}'
    if torch.cuda.is_available(): return 'GPUs present: a CPU smoke test would not exercise the gloo path'
    return None

@pytest.fixture(scope='module')
def launched(tmp_path_factory):
    "Launch SCRIPT as two CPU processes; each writes rank{i}.json and weights{i}.npy."
    if _skip_reason(): pytest.skip(_skip_reason())
    tmp = tmp_path_factory.mktemp('distrib')
    data = make_shapes(tmp/'shapes', n_classes=3, size=32, n_per_class=35, seed=0)  # 75 train, 15 valid: odd, so padded
    (tmp/'script.py').write_text(SCRIPT); (tmp/'out').mkdir()
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HOME': str(tmp/'hf'),  # no user accelerate config
           'CNN_COURSE_HOME': str(tmp/'home'), 'CNN_COURSE_OFFLINE': '1', 'PYTHONWARNINGS': 'ignore'}
    cmd = launch_cmd([tmp/'script.py', data, tmp/'out'], NPROC, port=_free_port(), accelerate=str(ACCELERATE))
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=240)
    seconds = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-5000:]
    res = [json.loads((tmp/'out'/f'rank{r}.json').read_text()) for r in range(NPROC)]
    return dict(res=res, out=tmp/'out', seconds=seconds)

def test_two_cpu_processes_train_one_model(launched):
    r0, r1 = launched['res']
    assert [r['rank'] for r in (r0, r1)] == [0, 1] and {r['world_size'] for r in (r0, r1)} == {NPROC}
    assert r0['batches_one_process'] == 4  # 75 images, batches of 16, last partial batch dropped
    assert r0['batches'] == r1['batches'] == 2  # each process trained on half of the epoch
    w0, w1 = (np.load(launched['out']/f'weights{r}.npy') for r in range(NPROC))
    np.testing.assert_array_equal(w0, w1)  # gradients were averaged: one model, not two
    h0, h1 = r0['history'][0], r1['history'][0]
    assert np.isfinite([h0['train_loss'], h0['valid_loss']]).all()
    assert h0['valid_loss'] == h1['valid_loss'] and h0['accuracy'] == h1['accuracy']  # gathered over both shards
    assert all(r['initialized_inside'] and not r['initialized_after'] for r in (r0, r1))
    assert r0['model_after'] == 'CourseModel'  # the DistributedDataParallel wrapper is gone after the context
    print(f"two processes: {launched['seconds']:.1f} s wall")

def test_predictions_gathered_over_the_full_valid_set(launched):
    for r in launched['res']:
        assert r['n_preds'] == r['n_valid'] == 15  # both shards, padding of the odd set removed
        assert r['targets_in_order'] and r['max_pred_diff'] < 1e-5  # same order and values as one process computing all
        # the accuracy of the gathered predictions is the one a single process computes on the whole valid set (the
        # epoch's logged metric is not: fastai averages it over the padded shards, 16 images for 15)
        assert r['valid_accuracy'] == pytest.approx(r['ref_accuracy'])

def test_train_callbacks_work_under_ddp(launched):
    for r in launched['res']: assert r['train_callbacks_error'] is None, r['train_callbacks_error']

def test_single_process_is_untouched(monkeypatch):
    for k in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK'): monkeypatch.delenv(k, raising=False)
    sentinel = object()
    with distributed(sentinel) as l: assert l is sentinel and not dist.is_initialized()
    assert (world_size(), rank(), is_main()) == (1, 0, True)

def test_rules_of_a_distributed_run(monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '2'); monkeypatch.setenv('RANK', '1')
    assert not is_main()
    assert distrib_overrides(dict(epochs=2)) == dict(epochs=2, cache_features=False)
    with pytest.raises(ValueError, match='cnn-course lr-find'): require_lr(None)
    assert require_lr(1e-3) == 1e-3 and 'lr' in NEED_LR

def test_cnn_course_train_under_accelerate_launch(tmp_path):
    "The real CLI: two CPU processes train one model; only the main process saves the run and prints."
    if (why := _skip_reason()): pytest.skip(why)
    data = make_shapes(tmp_path/'shapes', n_classes=3, size=32, n_per_class=30, seed=0)
    args = ['cnn-course', 'train', '--dataset', 'shapes', '--data', str(data), '--arch', 'simple_cnn', '--scratch',
            '--size', '32', '--bs', '16', '--epochs', '1', '--out', str(tmp_path/'run'), '--quiet']
    cmd = launch_cmd([str(Path(sys.executable).parent/a) if a == 'cnn-course' else a for a in args], 2, _free_port(), str(ACCELERATE))
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HF_HOME': str(tmp_path/'hf'), 'CNN_COURSE_HOME': str(tmp_path/'home')}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count('"test_accuracy"') == 1  # printed by the main process only
    meta = json.loads((tmp_path/'run'/'model.json').read_text())
    assert meta['epochs']['unfrozen'] == 1
    # the saved run is the trained model: evaluated again here, in one process, it scores what the launch printed
    again = evaluate(load_run(tmp_path/'run'), data=data).metrics.accuracy
    printed = json.loads(out.stdout[out.stdout.index('{'):])['test_accuracy']  # the JSON `cnn-course train` prints
    assert again == pytest.approx(meta['metrics']['test_accuracy'], abs=1e-6) == pytest.approx(printed, abs=1e-4)
