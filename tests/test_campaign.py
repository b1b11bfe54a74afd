"""The campaign tool: DVC's grid syntax, every point's params checked before any task, the
repository's remotes, the claim on a campaign's name; end to end on Ray clusters, each inside a
network namespace of its own (loopback only): docs/campaigns.md's commands, two campaigns under one
name, a push that fails, a GPU, the local cluster's sockets and token, Ctrl-C, a lost worker."""

import itertools
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.e2e import GIT, ROOT, campaign_remotes, dvc, dvc_stdout, run
from harness.netns import RAY_ENV, members, namespace, needs_netns, on_loopback
from stages.lib import progress
from tools import campaign


def test_the_campaign_is_dvcs_product_named_as_its_queue_names_it():
    points = campaign.points.expand(["ae.lr=3e-4,1e-3", "dataset=mnist,fashion-mnist"], name="lr")
    assert [p.name for p in points] == ["lr-1", "lr-2", "lr-3", "lr-4"]
    assert [str(p) for p in points] == [
        "ae.lr=0.0003 dataset=mnist",
        "ae.lr=0.0003 dataset=fashion-mnist",
        "ae.lr=0.001 dataset=mnist",
        "ae.lr=0.001 dataset=fashion-mnist",
    ]
    assert campaign.points.expand(["other.yaml:x=1,2"], name="o")[1].set_params == ["other.yaml:x=2"]


def test_the_default_name_is_the_same_for_the_same_campaign_and_differs_for_another():
    first, again = (campaign.points.expand(["vae.epochs=1,2"], name=None)[0].name for _ in range(2))
    other = campaign.points.expand(["vae.epochs=1,3"], name=None)[0].name
    assert re.fullmatch(r"campaign-[0-9a-f]{7}-1", first) and first == again != other


@pytest.mark.parametrize(
    ("set_params", "message"),
    [
        (["ae.lr=3e-4,"], "error: bad campaign 'ae.lr=3e-4,': "),
        (["ae.lr=glob(*)"], "Glob override 'ae.lr=glob(*)' is not supported"),
        (["ae.lrr=1e-3,3e-3"], "(ae.lrr=0.001): unknown key ae.lrr; allowed keys in ae: hidden, latent, epochs"),
        (["ae.lr=1e-3,3.0"], "(ae.lr=3.0): ae.lr must be <= 1.0, got 3.0"),
        (["vae.epochs=2", "dataset=mnist,imagenet"], "dataset must be one of mnist | fashion-mnist, got 'imagenet'"),
        (["other.yaml:x=1"], "(other.yaml:x=1): params file other.yaml not found"),
    ],
)
def test_a_bad_campaign_or_param_fails_before_ray_starts_naming_it(monkeypatch, capsys, set_params, message):
    import ray

    monkeypatch.chdir(ROOT)
    assert campaign.cli.main([arg for s in set_params for arg in ("-S", s)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not ray.is_initialized()


def git_repo(path: Path) -> tuple[Path, dict]:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    path.mkdir()
    (path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    run(["git", "init", "-q"], path, env)
    run([sys.executable, "-m", "dvc", "init", "-q"], path, env)
    run(["git", "add", "-A"], path, env)
    run([*GIT, "commit", "-qm", "start"], path, env)
    return path, env


def test_the_repository_must_be_committed_on_its_git_remote_and_have_a_dvc_remote(tmp_path):
    repo, env = git_repo(tmp_path / "repo")
    with pytest.raises(campaign.CampaignError, match="no git remote 'origin': the nodes clone the repository from it"):
        campaign.repository.baseline(repo, "origin")
    run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git")], tmp_path, env)
    run(["git", "remote", "add", "origin", "../origin.git"], repo, env)
    with pytest.raises(campaign.CampaignError, match="no default DVC remote: dvc remote add -d"):
        campaign.repository.baseline(repo, "origin")
    dvc(repo, env, "remote", "add", "-d", "store", "../store")
    with pytest.raises(campaign.CampaignError, match=r"uncommitted changes \(.dvc/config\): the points run commit"):
        campaign.repository.baseline(repo, "origin")
    run([*GIT, "commit", "-qam", "remote"], repo, env)
    with pytest.raises(campaign.CampaignError, match="is not on git remote 'origin': git push it first"):
        campaign.repository.baseline(repo, "origin")
    run(["git", "push", "-q", "origin", "HEAD"], repo, env)
    commit, remotes = campaign.repository.baseline(repo, "origin")
    assert commit == run(["git", "rev-parse", "HEAD"], repo, env).strip()
    # Relative paths made absolute: a node's clone starts elsewhere.
    assert remotes == campaign.repository.Remotes(
        git="origin", git_url=str(tmp_path / "origin.git"), dvc="store", dvc_url=str(tmp_path / "store")
    )


def test_a_failed_point_shows_the_end_of_its_log_and_a_finished_one_what_ran():
    point = campaign.points.Point(name="g-1", overrides=(("params.yaml", "vae.epochs=2"),))
    log = [f"line {i}" for i in range(100)]
    failed = campaign.driver.report(1, 2, point, {"ok": False, "node": "10.0.0.2 ab12cd34", "seconds": 7.2, "log": log})
    head = "[1/2] g-1 (vae.epochs=2): FAILED after 7 s on node 10.0.0.2 ab12cd34; the end of its log:"
    assert failed.splitlines()[0] == head
    assert failed.splitlines()[1:] == [f"    line {i}" for i in range(100 - campaign.driver.LOG_TAIL, 100)]
    log = ["Running stage 'train_vae':", "Stage 'sample' is cached - skipping run, checking out outputs"]
    done = campaign.driver.report(2, 2, point, {"ok": True, "node": "n", "seconds": 30, "log": log, "push_s": 2.04})
    assert done.endswith("done in 30 s on node n; ran train_vae; restored from the run cache sample; pushed in 2.0 s")
    niced = campaign.driver.report(2, 2, point, {"ok": True, "node": "n", "seconds": 30, "log": log, "nice": 15})
    assert "done in 30 s on node n at nice 15; ran train_vae" in niced


def test_a_param_file_outside_the_repository_is_refused_before_any_task(monkeypatch, capsys, tmp_path):
    """A node applies `-S FILE:...` to FILE in its clone: outside it, the write would land in
    the node's temporary directory, or anywhere."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "params.yaml").write_text("k: 1\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    monkeypatch.chdir(repo)
    for path in ("../x/params.yaml", str(tmp_path / "x" / "params.yaml")):
        assert campaign.cli.main(["-S", f"{path}:k=2"]) == 2
        err = capsys.readouterr().err
        assert f"params file {path} is outside the repository" in err, err
    assert (tmp_path / "x" / "params.yaml").read_text() == "k: 1\n"


def test_an_absolute_params_file_in_the_repository_is_refused_untouched(monkeypatch, capsys, tmp_path):
    """It names the driver's file, not the clone's: the check would have copied it onto itself
    and a node would write to the driver's path."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    (repo / "other.yaml").write_text("k: 1\n")
    monkeypatch.chdir(repo)
    assert campaign.cli.main(["-S", f"{repo / 'other.yaml'}:k=2"]) == 2
    err = capsys.readouterr().err
    assert f"params file {repo / 'other.yaml'}: give it as other.yaml" in err and "Traceback" not in err, err
    assert (repo / "other.yaml").read_text() == "k: 1\n"


@pytest.mark.parametrize(
    ("address", "local"),
    [(None, True), ("", True), ("local", True), (" LOCAL ", True), ("auto", False), ("127.0.0.1:6379", False)],
)
def test_local_however_spelled_is_the_local_cluster(address, local):
    assert campaign.cluster.is_local(address) is local


def remote_repo(tmp_path: Path) -> tuple[Path, dict, campaign.repository.Remotes, str]:
    """A committed repository with a bare git remote that has its commit."""
    repo, env = git_repo(tmp_path / "repo")
    run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git")], tmp_path, env)
    run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], repo, env)
    remotes = campaign.repository.Remotes(
        git="origin", git_url=str(tmp_path / "origin.git"), dvc="store", dvc_url="unused"
    )
    return repo, env, remotes, run(["git", "rev-parse", "HEAD"], repo, env).strip()


def test_a_campaign_name_is_claimed_on_the_git_remote(tmp_path):
    """A name in use is refused, naming the experiments, before any task; the same campaign again
    is refused while it runs and resumes once it has ended (its pushed points kept); --replace
    takes the names, leasing only what it saw."""
    repo, env, remotes, commit = remote_repo(tmp_path)
    points = campaign.points.expand(["vae.epochs=1,2"], "g")
    claimed = campaign.repository.claim(repo, remotes, commit, points, replace=False)
    refs = [campaign.points.exp_ref(commit, "g-1"), campaign.points.exp_ref(commit, "g-2")]
    assert claimed == campaign.repository.Claim(done={}, leases=dict.fromkeys(refs, ""))
    assert "refs/campaigns/g" in run(["git", "ls-remote", remotes.git_url], repo, env)

    run(["git", "push", "-q", "origin", f"HEAD:{refs[0]}"], repo, env)  # g-1 finished, g-2 did not
    with pytest.raises(campaign.CampaignError, match=r"campaign 'g' is running .*: wait for it to end, or --replace"):
        campaign.repository.claim(repo, remotes, commit, points, replace=False)
    campaign.repository.release(repo, remotes, claimed)
    again = campaign.repository.claim(repo, remotes, commit, points, replace=False)
    assert again.done == {"g-1": commit}
    campaign.repository.release(repo, remotes, again)
    with pytest.raises(
        campaign.CampaignError, match="campaign name 'g' is taken on git remote 'origin' by another campaign"
    ):
        campaign.repository.claim(repo, remotes, commit, campaign.points.expand(["vae.epochs=3,4"], "g"), replace=False)

    # Names made some other way (`dvc exp run -n`, another commit's campaign), there or here.
    run(["git", "push", "-q", "origin", f"HEAD:refs/exps/ab/{'c' * 38}/h-2"], repo, env)
    with pytest.raises(campaign.CampaignError, match="experiments h-2 already exist on git remote 'origin' or here"):
        campaign.repository.claim(repo, remotes, commit, campaign.points.expand(["vae.epochs=1,2"], "h"), replace=False)
    run(["git", "update-ref", f"refs/exps/ab/{'c' * 38}/k-1", "HEAD"], repo, env)
    with pytest.raises(campaign.CampaignError, match="experiments k-1 already exist"):
        campaign.repository.claim(repo, remotes, commit, campaign.points.expand(["vae.epochs=1,2"], "k"), replace=False)

    replaced = campaign.repository.claim(
        repo, remotes, commit, campaign.points.expand(["vae.epochs=3,4"], "g"), replace=True
    )
    assert replaced == campaign.repository.Claim(done={}, leases={refs[0]: commit, refs[1]: ""})


def test_pulling_moves_a_ref_here_only_where_it_is_the_commit_the_campaign_replaced(tmp_path):
    """--replace replaces on the remote what the claim leased; here, the same: an experiment of
    this clone that the remote never had is kept, and named, rather than forced over."""
    repo, env, remotes, commit = remote_repo(tmp_path)

    def child(message: str) -> str:
        return run(["git", "commit-tree", "HEAD^{tree}", "-p", "HEAD", "-m", message], repo, env).strip()

    replaced, local_only, new_1, new_2 = (child(m) for m in ("old g-1", "this clone's g-2", "g-1", "g-2"))
    refs = [campaign.points.exp_ref(commit, "g-1"), campaign.points.exp_ref(commit, "g-2")]
    run(["git", "update-ref", refs[0], replaced], repo, env)  # pulled from an earlier campaign
    run(["git", "update-ref", refs[1], local_only], repo, env)  # `dvc exp run` here, never pushed
    run(["git", "push", "-q", "origin", f"{new_1}:{refs[0]}", f"{new_2}:{refs[1]}"], repo, env)
    with pytest.raises(campaign.CampaignError, match=r"experiments g-2 here are commits of this clone .*: kept"):
        campaign.repository.pull(
            repo, remotes, commit, {"g-1": new_1, "g-2": new_2}, replaced={refs[0]: replaced, refs[1]: ""}
        )
    here = run(["git", "for-each-ref", "--format=%(objectname)", *refs], repo, env).split()
    assert here == [new_1, local_only]


def test_of_two_campaigns_claiming_one_name_at_once_one_is_refused(tmp_path, monkeypatch):
    """The same campaign started twice at once: both find the name free, one claim is pushed first,
    and git refuses the other's (not a fast-forward of it)."""
    repo, _, remotes, commit = remote_repo(tmp_path)
    points = campaign.points.expand(["vae.epochs=1,2"], "twin")
    git, first = campaign.repository.git, []

    def pushed_first_elsewhere(root, *args, **kwargs):
        if args[0] == "push" and not first:
            first.append("started")
            first.append(campaign.repository.claim(root, remotes, commit, points, replace=False))
        return git(root, *args, **kwargs)

    monkeypatch.setattr(campaign.repository, "git", pushed_first_elsewhere)
    with pytest.raises(
        campaign.CampaignError, match="campaign name 'twin' was claimed on git remote 'origin' by another campaign"
    ):
        campaign.repository.claim(repo, remotes, commit, points, replace=False)
    assert isinstance(first[1], campaign.repository.Claim)  # the first campaign's claim went through


def test_a_status_line_names_the_stage_and_the_epoch_from_the_runs_output():
    """The lines `dvc exp run` and the training loop print, as a point's status reads them."""
    stage = campaign.node.STAGE.search("Running stage 'train_vae':")
    single = progress.parse("train_vae: epoch 2/3 train_loss 531.9, test_loss 522.5 (0.9 s)")
    batched = progress.parse(
        "robustness: 4 VAEs: epoch 1/2 train_loss 547.3 (mean of members), test_loss 537.3 (0.7 s)"
    )
    assert stage.group(1) == "train_vae" and single[:3] == ("train_vae", 2, 3)
    assert batched[:3] == ("robustness: 4 VAEs", 1, 2) and batched.seconds == 0.7
    assert progress.parse("Running stage 'train_vae':") is None


def test_a_clone_whose_worker_is_gone_is_swept_and_no_other(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    me = f"{os.getpid()} {campaign.node._started(os.getpid())}"
    owners = {"dead": f"{gone.pid} 1", "reused": f"{os.getpid()} 1", "alive": me, "kept": f"{gone.pid} 1"}
    for name, owner in owners.items():
        (tmp_path / name / "repo").mkdir(parents=True)
        (tmp_path / name / campaign.node.OWNER).write_text(owner)
    (tmp_path / "kept" / campaign.node.KEPT).write_text("")
    (tmp_path / f"{campaign.node.NEW}starting").mkdir()  # its owner has not written the file yet
    (tmp_path / ".half.sweeping").mkdir()  # a sweep that a command still writing there made fail
    # Made again, without its owner, by a killed run's `dvc exp run` that wrote after the sweep.
    (tmp_path / "recreated" / "repo" / ".dvc" / "tmp").mkdir(parents=True)
    assert sorted(p.name for p in campaign.node.sweep(tmp_path)) == ["dead", "recreated", "reused"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{campaign.node.NEW}starting", "alive", "kept"]


@pytest.mark.parametrize(
    ("set_params", "name", "message"),
    [
        (["vae.epochs=1"], "a..b", "--name 'a..b': .* a valid git ref name"),
        (["vae.epochs=1"], "a.", "--name 'a.': .* a valid git ref name"),
        (["vae.epochs=1"], "x.lock", "--name 'x.lock': .* a valid git ref name"),
        (["ae.lr=${vae.lr}"], "g", r"-S 'ae.lr=\$\{vae.lr\}': interpolations .* are not allowed in a campaign"),
    ],
)
def test_an_invalid_ref_name_or_an_interpolation_is_refused_before_any_task(set_params, name, message):
    """A name that git refuses as a ref would pass the character check and fail at the claim's
    push; `${...}` would be resolved once on the driver for the check and again on each node."""
    with pytest.raises(campaign.CampaignError, match=message):
        campaign.points.expand(set_params, name)


def pushed_repo(tmp_path: Path) -> tuple[Path, dict]:
    """A repository with a git remote and a DVC remote, its commit pushed: baseline() passes."""
    repo, env = git_repo(tmp_path / "repo")
    run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git")], tmp_path, env)
    run(["git", "remote", "add", "origin", str(tmp_path / "origin.git")], repo, env)
    dvc(repo, env, "remote", "add", "-d", "store", str(tmp_path / "store"))
    run([*GIT, "commit", "-qam", "remote"], repo, env)
    run(["git", "push", "-q", "origin", "HEAD"], repo, env)
    campaign.repository.baseline(repo, "origin")
    return repo, env


def test_an_untracked_file_counts_as_an_uncommitted_change(tmp_path):
    """A new stage module or params file, not yet added, is not in the nodes' clones either."""
    repo, _ = pushed_repo(tmp_path)
    (repo / "new_stage.py").write_text("")
    with pytest.raises(campaign.CampaignError, match=r"uncommitted changes \(new_stage.py\): the points run commit"):
        campaign.repository.baseline(repo, "origin")


@pytest.mark.parametrize(
    ("url", "info"),
    [
        ("https://user:s3cret@example.com/x.git", "user:s3cret"),
        ("https://ghp_token@github.com/x.git", "ghp_token"),  # a token as the user name
        ("ssh://user:s3cret@host/x.git", "user:s3cret"),
        ("s3://key:s3cret@bucket/path", "key:s3cret"),
        ("ssh://git@host/x.git", None),  # an SSH user names an account: its key is elsewhere
        ("git@github.com:x/y.git", None),
        ("s3://bucket/path", None),
        ("/srv/origin.git", None),
    ],
)
def test_credentials_in_a_url_are_found(url, info):
    assert campaign.repository.userinfo(url) == info
    assert "s3cret" not in campaign.repository.redact(url)


def test_a_remote_url_with_credentials_is_refused_naming_the_remote_and_not_the_secret(tmp_path):
    """They would reach `git clone`/`git push` argv on every node (`ps`), the logs, the tasks'
    arguments and point.json."""
    repo, env = pushed_repo(tmp_path)
    origin = str(tmp_path / "origin.git")
    run(["git", "remote", "set-url", "origin", "https://user:s3cret@example.invalid/x.git"], repo, env)
    with pytest.raises(campaign.CampaignError) as refused:
        campaign.repository.baseline(repo, "origin")
    said = str(refused.value)
    assert said.startswith("git remote 'origin': its URL https://***@example.invalid/x.git carries credentials")
    assert "credential helper" in said and "s3cret" not in said
    run(["git", "remote", "set-url", "origin", origin], repo, env)
    dvc(repo, env, "remote", "modify", "--local", "store", "url", "https://user:s3cret@example.invalid/store")
    with pytest.raises(campaign.CampaignError) as refused:
        campaign.repository.baseline(repo, "origin")
    said = str(refused.value)
    assert said.startswith("DVC remote 'store': its URL https://***@example.invalid/store carries credentials")
    assert "s3cret" not in said


def exp_show(verdicts: dict, seeds: list[int]) -> str:
    """`dvc exp show --json` for one experiment, g-1, with these verdicts."""
    data = {
        "params": {"params.yaml": {"data": {"ae": {"seeds": seeds}, "vae": {"epochs": 2}}}},
        "metrics": {"metrics/study.json": {"data": {"verdicts": verdicts}}},
    }
    return json.dumps([{"experiments": [{"revs": [{"name": "g-1", "data": data}]}]}])


def test_a_verdict_that_counts_runs_is_held_where_it_holds_in_all_of_them(monkeypatch, tmp_path):
    """metrics/study.json keeps an outcome as a boolean or as the number of the study's runs
    (one per ae.seeds) it holds in; the report reads 'holds in all 3 runs' as held."""
    verdicts = {"a": True, "b": False, "c": 3, "d": 2, "e": 0}
    shown = exp_show(verdicts, seeds=[1, 2, 3])
    real = subprocess.run
    monkeypatch.setattr(
        campaign.node.subprocess,
        "run",
        lambda cmd, **kwargs: (
            subprocess.CompletedProcess(cmd, 0, shown, "") if cmd[-3:] == ["exp", "show", "--json"]
            else real(cmd, **kwargs)
        ),
    )  # fmt: skip
    table = campaign.results.table(tmp_path, campaign.points.expand(["vae.epochs=2"], "g"), {"g-1": "done"})
    assert table.loc["g-1", "verdicts held"] == "2/5"


def test_the_finish_command_survives_a_shell_whatever_the_clone_is_called():
    clone = Path("/home/a user/.cache/dvc-campaign/clones/g-1-$(touch x);'")
    words = shlex.split(campaign.node.finish_command(clone))
    assert words == ["cd", f"{clone}/repo", "&&", sys.executable, "-m", "tools.campaign", "--finish", str(clone)]


def test_the_clone_folder_is_private_and_beside_the_node_cache(monkeypatch, tmp_path):
    """Not /tmp/dvc-campaign-UID, which another user could make first: a folder of this user's
    alone under the cache, in the node's folder, also this user's alone (it holds the DVC cache
    that points train on); each refused where it is a link, another user's, or open to others."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = campaign.node.clones_dir()
    assert folder == campaign.node.cache_dir().parent / "clones" == tmp_path / "cache" / "dvc-campaign" / "clones"
    assert folder.stat().st_mode & 0o777 == folder.parent.stat().st_mode & 0o777 == 0o700
    assert campaign.node.clones_dir() == folder
    folder.parent.chmod(0o777)
    with pytest.raises(campaign.CampaignError, match=r"dvc-campaign is open to other users \(mode 0777\): chmod 700"):
        campaign.node.clones_dir()
    folder.parent.chmod(0o700)
    folder.chmod(0o755)
    with pytest.raises(campaign.CampaignError, match=r"clones is open to other users \(mode 0755\): chmod 700 it"):
        campaign.node.clones_dir()
    folder.chmod(0o700)
    if os.getuid() == 0:  # only root can give a folder away
        os.chown(folder, 4242, -1)
        with pytest.raises(campaign.CampaignError, match=r"clones belongs to uid 4242, not to this user"):
            campaign.node.clones_dir()
    folder.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    folder.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(campaign.CampaignError, match="clones is not a folder but a link or a file: remove it"):
        campaign.node.clones_dir()


def test_a_token_others_can_read_is_refused_and_two_campaigns_making_one_share_it(monkeypatch, tmp_path):
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    path = tmp_path / "ray" / "auth_token"
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(path))
    assert campaign.cluster.auth_token() == f"new token in {path}"
    assert path.stat().st_mode & 0o777 == 0o600 and len(path.read_text()) == 64
    path.chmod(0o644)  # as `ray get-auth-token --generate` writes it
    with pytest.raises(
        campaign.CampaignError, match=rf"token file {path} is readable by other users \(mode 0644\): chmod 600"
    ):
        campaign.cluster.auth_token()
    path.unlink()

    # Another campaign makes the token between this one's look and its write: this one uses it.
    mkdir = Path.mkdir

    def another_campaign_first(self, *args, **kwargs):
        mkdir(self, *args, **kwargs)
        if self == path.parent and not path.exists():
            path.write_text("theirs")
            path.chmod(0o600)

    with monkeypatch.context() as patched:
        patched.setattr(Path, "mkdir", another_campaign_first)
        assert campaign.cluster.auth_token() == f"token in {path}"
    assert path.read_text() == "theirs" and [p.name for p in path.parent.iterdir()] == ["auth_token"]


def test_a_cluster_at_an_address_is_joined_with_token_auth_or_an_explicit_no_auth(monkeypatch):
    """Whoever reaches Ray's job API without auth runs code on the cluster (CVE-2023-48022)."""
    import ray

    def unreachable(**kwargs):
        raise ConnectionError("nothing there")

    monkeypatch.setattr(ray, "init", unreachable)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    with pytest.raises(
        campaign.CampaignError, match=r"cluster at 10\.9\.0\.2:6379 is joined without token auth: .*--no-auth"
    ):
        campaign.cluster.connect("10.9.0.2:6379")
    with pytest.raises(campaign.CampaignError, match=r"no Ray cluster reached at 10\.9\.0\.2:6379"):
        campaign.cluster.connect("10.9.0.2:6379", no_auth=True)
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "0" * 64)
    with pytest.raises(campaign.CampaignError, match=r"no Ray cluster reached at 10\.9\.0\.2:6379"):
        campaign.cluster.connect("10.9.0.2:6379")
    assert campaign.cli.parse_args(["--no-auth", "-S", "vae.epochs=1"]).no_auth


def test_a_push_whose_reply_was_lost_is_found_on_the_remote_not_reported_failed(monkeypatch, tmp_path):
    """The ref reached the remote but the reply did not: a retry would hit its own lease, so
    the remote ref is read before reporting the push failed."""
    repo, env, remotes, commit = remote_repo(tmp_path)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", remotes.git_url, str(clone / "repo")], tmp_path, env)
    run([*GIT, "commit", "-q", "--allow-empty", "-m", "the experiment"], clone / "repo", env)
    rev = run(["git", "rev-parse", "HEAD"], clone / "repo", env).strip()
    ref = campaign.points.exp_ref(commit, "p-1")
    spec = {"ref": ref, "rev": rev, "lease": "", "git_url": remotes.git_url, "dvc_remote": "store"}
    (clone / "point.json").write_text(json.dumps(spec))
    monkeypatch.setattr(campaign.node, "push_outputs", lambda repo, remote, rev: "pushed to the DVC remote")
    monkeypatch.setattr(campaign.node, "PUSH_BACKOFF_S", 0)
    real = subprocess.run

    def reply_lost(cmd, *args, **kwargs):
        done = real(cmd, *args, **kwargs)
        if cmd[:2] == ["git", "push"]:
            return subprocess.CompletedProcess(cmd, 128, "fatal: the remote end hung up unexpectedly", None)
        return done

    monkeypatch.setattr(campaign.node.subprocess, "run", reply_lost)
    log = campaign.node.push_point(clone)
    assert log[-1].startswith(f"pushed {ref} to the git remote (found there after: fatal: the remote end hung up"), log
    monkeypatch.undo()
    assert run(["git", "ls-remote", remotes.git_url, ref], repo, env).split()[0] == rev


def test_a_retried_point_whose_push_arrived_is_done_not_run_again(monkeypatch, tmp_path):
    """Ray reruns a point whose worker was lost; where the lost attempt's push had reached the
    git remote, the retry reports that commit (run again, it would fail on its lease) and
    clones nothing."""
    from types import SimpleNamespace as N

    import ray

    repo, env, remotes, commit = remote_repo(tmp_path)
    (point,) = campaign.points.expand(["vae.epochs=2"], "r")
    context = N(get_node_id=lambda: "0" * 16, get_assigned_resources=lambda: {"CPU": 1.0})
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "127.0.0.1")
    monkeypatch.setattr(ray, "get_runtime_context", lambda: context)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])

    def cloned():
        raise RuntimeError("the point runs")

    monkeypatch.setattr(campaign.node, "clones_dir", cloned)
    with pytest.raises(RuntimeError, match="the point runs"):  # nothing on the remote yet
        campaign.node.run_point(point=point, commit=commit, remotes=remotes, lease="")
    run(["git", "push", "-q", "origin", f"HEAD:{campaign.points.exp_ref(commit, point.name)}"], repo, env)
    result = campaign.node.run_point(point=point, commit=commit, remotes=remotes, lease="")
    assert result["ok"] and result["rev"] == commit and "earlier attempt" in result["log"][-1]
    # The commit its lease names is the one the point replaces, not its own: it runs.
    with pytest.raises(RuntimeError, match="the point runs"):
        campaign.node.run_point(point=point, commit=commit, remotes=remotes, lease=commit)


def test_outputs_missing_from_the_dvc_remote_fail_the_push_before_the_ref_is_pushed(tmp_path):
    """DVC pushes what it finds and only warns of the rest; the remote is asked instead."""
    repo, env = pushed_repo(tmp_path)
    (repo / "data.txt").write_text("an output\n")
    dvc(repo, env, "add", "data.txt")
    run([*GIT, "add", "-A"], repo, env)
    run([*GIT, "commit", "-qm", "data"], repo, env)
    rev = run(["git", "rev-parse", "HEAD"], repo, env).strip()
    cached = [path for path in (repo / ".dvc" / "cache").rglob("*") if path.is_file()]
    kept = {path: path.read_bytes() for path in cached}
    for path in cached:
        path.unlink()  # lost from the cache, as after a gc or a failed copy
    with pytest.raises(RuntimeError, match=r"1 objects of the experiment's outputs are not on the DVC remote: data"):
        campaign.node.push_outputs(repo, "store", rev)
    for path, data in kept.items():
        path.write_bytes(data)
    assert campaign.node.push_outputs(repo, "store", rev).startswith("pushed to the DVC remote: 1 objects")


def test_a_push_is_tried_four_times_with_backoff_then_names_every_attempt(monkeypatch, tmp_path):
    """docs/campaigns.md: four tries, waiting 1, 2 and 4 s between them; the error keeps each one."""
    clone = tmp_path / "clone"
    clone.mkdir()
    spec = {"ref": "refs/exps/x", "rev": "0" * 40, "lease": "", "git_url": "unused", "dvc_remote": "store"}
    (clone / "point.json").write_text(json.dumps(spec))
    waits = []

    def remote_down(repo, remote, rev):
        raise RuntimeError("the DVC remote is down")

    monkeypatch.setattr(campaign.node, "push_outputs", remote_down)
    monkeypatch.setattr(campaign.node.time, "sleep", waits.append)
    with pytest.raises(RuntimeError) as failed:
        campaign.node.push_point(clone)
    assert waits == [1.0, 2.0, 4.0]
    assert str(failed.value).splitlines() == [
        f"push attempt {n} of 4 failed: the DVC remote is down" for n in range(1, 5)
    ]


def test_a_points_openmp_threads_sleep_while_they_wait_unless_the_user_says_otherwise(monkeypatch, tmp_path):
    """Two points' trainings on the same cores, their waiting threads spinning, each ran many
    times slower than with them asleep (benchmarks/README.md): a point's stages get the passive
    wait, and a user's own setting stands."""
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert campaign.node.point_env(tmp_path)["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert campaign.node.point_env(tmp_path)["OMP_WAIT_POLICY"] == "ACTIVE"


def test_a_points_dvc_site_cache_is_in_its_clone_folder_and_goes_with_it(monkeypatch, tmp_path):
    """DVC keeps a site cache per repository path (/var/tmp/dvc/repo/<digest>): every point's
    clone is a new path, so each left a folder there. Its commands and its push keep it in the
    clone's folder instead."""
    from dvc.repo import Repo

    clone = tmp_path / "clone"
    clone.mkdir()
    git_repo(clone / "repo")
    assert campaign.node.point_env(clone)["DVC_SITE_CACHE_DIR"] == str(clone / campaign.node.SITE)
    spec = {"ref": "refs/exps/x", "rev": "0" * 40, "lease": "", "git_url": "unused", "dvc_remote": "store"}
    (clone / "point.json").write_text(json.dumps(spec))
    seen = []

    def outputs(repo, remote, rev):
        with Repo(str(repo)) as opened:
            seen.append(Path(opened.site_cache_dir))
        raise RuntimeError("enough")

    monkeypatch.setattr(campaign.node, "push_outputs", outputs)
    monkeypatch.setattr(campaign.node, "PUSH_TRIES", 1)
    monkeypatch.delenv("DVC_SITE_CACHE_DIR", raising=False)
    with pytest.raises(RuntimeError, match="enough"):
        campaign.node.push_point(clone)
    assert seen[0].is_relative_to(clone / campaign.node.SITE) and "DVC_SITE_CACHE_DIR" not in os.environ, seen


def test_a_campaign_takes_over_its_own_claim_whose_driver_is_gone_keeping_its_finished_points(monkeypatch, tmp_path):
    """A driver killed outright (SIGKILL, its machine restarted) leaves its claim "running";
    the same campaign run again on that machine by that user takes it over, its finished points
    kept (`--replace` would run them all again). A driver that lives, or one elsewhere, is
    not taken over."""
    repo, env, remotes, commit = remote_repo(tmp_path)
    points = campaign.points.expand(["vae.epochs=1,2"], "g")
    gone = subprocess.Popen(["true"])
    gone.wait()
    with monkeypatch.context() as patched:
        patched.setattr(campaign.node.os, "getpid", lambda: gone.pid)
        campaign.repository.claim(repo, remotes, commit, points, replace=False)  # then killed: never released
    run(
        ["git", "push", "-q", "origin", f"HEAD:{campaign.points.exp_ref(commit, 'g-1')}"], repo, env
    )  # g-1 had finished
    again = campaign.repository.claim(repo, remotes, commit, points, replace=False)
    assert again.done == {"g-1": commit}
    assert re.fullmatch(rf"taking over refs/campaigns/g, whose driver is gone \(\S+ pid {gone.pid} .*", again.note)
    with pytest.raises(campaign.CampaignError, match="campaign 'g' is running"):  # this driver lives
        campaign.repository.claim(repo, remotes, commit, points, replace=False)
    user = campaign.repository.getpass.getuser()
    assert not campaign.repository.stale(f"{user}@elsewhere pid {gone.pid} {time.time():.0f} 0a1b2c3d")
    assert campaign.repository.stale(
        f"{user}@{campaign.repository.socket.gethostname()} pid {gone.pid} {time.time():.0f} 0a1b2c3d"
    )


class FakeRay:
    """Just enough of Ray for `campaign.driver.run`: each `ray.wait` plays the next step of a script (a
    function of this fake that returns the names of the points that end); `cancel` plays
    `on_cancel`; the status board answers `board()`."""

    def __init__(self, monkeypatch, steps, on_cancel=lambda: None, board=dict):
        import ray

        self.steps, self.on_cancel, self.board, self.cancelled = iter(steps), on_cancel, board, set()
        for name in ("cluster_resources", "remote", "wait", "get", "cancel"):
            monkeypatch.setattr(ray, name, getattr(self, name))
        monkeypatch.setattr(ray.cloudpickle, "register_pickle_by_value", lambda module: None)

    def cluster_resources(self):
        return {"CPU": 2.0}

    def remote(self, *args, **kwargs):
        from types import SimpleNamespace as N

        if args:  # ray.remote(run_point): a task, whose reference is its point's name
            return N(options=lambda **_: N(remote=lambda point, **__: point.name))
        return lambda cls: N(remote=lambda: N(get=N(remote=lambda: "board"), set=N(remote=lambda *a: None)))

    def wait(self, refs, num_returns=1, timeout=None):
        step = next(self.steps, None)
        assert step is not None, "the campaign went on waiting past the end of the script"
        ended = step()
        return [r for r in refs if r in ended], [r for r in refs if r not in ended]

    def get(self, ref, timeout=None):
        from ray.exceptions import TaskCancelledError

        if ref == "board":
            return self.board()
        if ref in self.cancelled:
            raise TaskCancelledError()
        return {"ok": True, "rev": f"rev-{ref}", "node": "n", "seconds": 1.0, "log": []}

    def cancel(self, ref, force=False):
        self.cancelled.add(ref)
        self.on_cancel()


def run_on_fake_ray(name: str, stop: campaign.driver.Stop | None = None) -> campaign.driver.Outcome:
    """`campaign.driver.run` of the points `vae.epochs=1,2` named `name`-1 and -2, on CPU, under
    :class:`FakeRay` (installed first)."""
    from types import SimpleNamespace as N

    points = campaign.points.expand(["vae.epochs=1,2"], name)
    commit = "c" * 40
    return campaign.driver.run(
        points,
        commit=commit,
        remotes=None,
        params={p.name: N(device="cpu") for p in points},
        cpus=1,
        where="it",
        claim=campaign.repository.Claim(done={}, leases={campaign.points.exp_ref(commit, p.name): "" for p in points}),
        stop=stop,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_sigterm_sighup_and_a_second_signal_stop_a_campaign_as_ctrl_c_does(monkeypatch, capfd, tmp_path, sig):
    """The signal while s-2 runs: it is cancelled, s-1 pulled, the claim ended, exit 130; the
    same signal again while s-2 is cancelled, and again during the pull, cuts nothing short."""
    from types import SimpleNamespace as N

    def signalled():
        os.kill(os.getpid(), sig)
        time.sleep(2)  # the handler raises here
        return set()

    calls = []
    FakeRay(
        monkeypatch,
        steps=[lambda: {"s-1"}, signalled, lambda: {"s-2"}],
        on_cancel=lambda: os.kill(os.getpid(), sig),
    )
    points = campaign.points.expand(["vae.epochs=1,2"], "s")
    commit = "c" * 40
    claimed = campaign.repository.Claim(done={}, leases={campaign.points.exp_ref(commit, p.name): "" for p in points})
    remotes = campaign.repository.Remotes(git="origin", git_url="unused", dvc="store", dvc_url="unused")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(campaign.cli, "check", lambda points, root: {p.name: N(device="cpu") for p in points})
    monkeypatch.setattr(campaign.cli, "baseline", lambda root, remote: (commit, remotes))
    monkeypatch.setattr(campaign.cli, "claim", lambda *args, **kwargs: claimed)
    monkeypatch.setattr(campaign.cli, "connect", lambda address, no_auth: "a fake cluster")
    monkeypatch.setattr(campaign.cli, "release", lambda root, remotes, claim: calls.append("released"))

    def pulled(root, remotes, commit, finished, replaced):
        calls.append(("pulled", dict(finished)))
        os.kill(os.getpid(), sig)

    monkeypatch.setattr(campaign.cli, "pull", pulled)
    monkeypatch.setattr(
        campaign.cli, "table", lambda root, points, states: calls.append(("states", states)) or N(to_string=str)
    )
    # Where the tool does not handle the signal, this does (SIGTERM would end pytest itself).
    unhandled = []
    before = signal.signal(sig, lambda *_: unhandled.append(sig))
    try:
        code = campaign.cli.main(["-n", "s", "-S", "vae.epochs=1,2"])
    except KeyboardInterrupt:
        pytest.fail("a signal during the cleanup cut it short")
    finally:
        signal.signal(sig, before)
    assert not unhandled and code == campaign.cli.INTERRUPTED
    assert calls == [
        "released",
        ("pulled", {"s-1": "rev-s-1"}),
        ("states", {"s-1": "done", "s-2": "cancelled"}),
    ]
    err = capfd.readouterr().err
    assert f"campaign: interrupted: cancelling 1 running points ({sig.name})" in err, err
    assert err.count(f"campaign: {sig.name}: stopping already") == 2, err


def test_a_status_board_that_does_not_answer_does_not_stop_the_campaign(monkeypatch, capsys):
    """The board is only for show: a read that times out (or its actor lost) is skipped, and
    the points run on."""
    from ray.exceptions import GetTimeoutError

    def no_answer():
        raise GetTimeoutError("Get timed out: some object(s) not ready")

    FakeRay(monkeypatch, steps=[set, lambda: {"b-1", "b-2"}], board=no_answer)
    outcome = run_on_fake_ray("b")
    assert outcome.states == {"b-1": "done", "b-2": "done"} and not outcome.interrupted
    assert "campaign: no status this time (GetTimeoutError)" in capsys.readouterr().out


def test_a_signal_while_a_point_ends_lets_its_end_be_booked_first(monkeypatch, capsys):
    """Ctrl-C just after a finished point's line is printed (as a terminal's user who saw it
    would press it): the point counts as finished once, not as running, and its line is not
    printed again while the cancel runs."""
    real = campaign.driver.report

    def report_then_signal(index, total, point, result):
        line = real(index, total, point, result)
        if point.name == "i-1":
            os.kill(os.getpid(), signal.SIGINT)  # Python runs the handler at the next bytecode
        return line

    monkeypatch.setattr(campaign.driver, "report", report_then_signal)
    FakeRay(monkeypatch, steps=[lambda: {"i-1"}, lambda: {"i-2"}])
    with campaign.driver.Stop() as stop:
        outcome = run_on_fake_ray("i", stop=stop)
    captured = capsys.readouterr()
    assert outcome.interrupted and outcome.states == {"i-1": "done", "i-2": "cancelled"}
    assert "campaign: interrupted: cancelling 1 running points (SIGINT)" in captured.err, captured.err
    assert captured.out.count("] i-1 (") == 1, captured.out


# --- on Ray clusters, each in a network namespace of its own ---------------------------------

DOCS = ROOT / "docs" / "campaigns.md"


def docs_blocks() -> list[list[str]]:
    """The command blocks of docs/campaigns.md: a fresh clone's remotes, then the campaigns."""
    from tests.test_readme import commands

    return [commands(block) for block in re.findall(r"```sh\n(.*?)```", DOCS.read_text(), re.DOTALL)]


def shell(inside: list[str], line: str, cwd: Path, env: dict, **substitutions: str) -> subprocess.CompletedProcess:
    for placeholder, value in {"HEAD_IP": "127.0.0.1", "NODE_IP": "127.0.0.1", **substitutions}.items():
        line = line.replace(placeholder, value)
    return subprocess.run([*inside, "bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True)


def holder(inside: list[str]) -> int:
    return int(inside[1].removeprefix("--net=/proc/").removesuffix("/ns/net"))


def clones_under(cache: Path) -> Path:
    """The nodes' clone folder, for a node whose XDG_CACHE_HOME is `cache`."""
    return cache / "dvc-campaign" / "clones"


GPU_NODE = (
    "RAY_AUTH_MODE=token RAY_worker_niceness=0 ray start --address=127.0.0.1:6379 --node-ip-address=127.0.0.1"
    " --num-cpus=1 --num-gpus=1"
)


@pytest.fixture(scope="module")
def cluster(pipeline, tmp_path_factory):
    """The docs' cluster, started by its own lines (a token, a head, a node), and a third node
    that declares a GPU; shared by the tests that run campaigns on it. Ray's environment: no
    usage report, a capped object store, no dashboard; its own HOME (the token) and cache."""
    _, env, _ = pipeline
    where = tmp_path_factory.mktemp("cluster")
    env = {k: v for k, v in env.items() if not k.endswith("MNIST_MIRROR")} | RAY_ENV
    env |= {"HOME": str(where / "home"), "XDG_CACHE_HOME": str(where / "cache")}
    env |= {"GIT_AUTHOR_NAME": "test", "GIT_COMMITTER_NAME": "test"}
    env |= {"GIT_AUTHOR_EMAIL": "test@example.com", "GIT_COMMITTER_EMAIL": "test@example.com"}
    (where / "home").mkdir()
    _, token, head, node, _ = docs_blocks()[1]
    # One such cluster on the machine at a time: `ray start --head --port=6379` refuses while
    # /tmp/ray names that address and a gcs_server process holds it, in any network namespace
    # (it reads the process list), so two xdist workers' clusters at once failed to start.
    lock = tmp_path_factory.getbasetemp().parent / "docs-cluster.lock"
    with campaign.node.locked(lock), namespace() as inside:
        for line in (token, head, node, GPU_NODE):
            started = shell(inside, line, where, env)
            assert started.returncode == 0, started.stdout + started.stderr
        # Ray's `ray stop` would stop every Ray process on the machine, other tests' too: the
        # namespace's end stops every process inside it instead.
        yield inside, env


def on_cluster(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.campaign", "--address=127.0.0.1:6379", *args]


def pushed_experiments(origin: Path, env: dict) -> set[str]:
    refs = run(["git", "ls-remote", str(origin), "refs/exps/*"], origin, env)
    return {line.rsplit("/", 1)[1] for line in refs.splitlines()}


def point_lines(output: str) -> dict[str, str]:
    """Point name -> the line it ended with."""
    return {m.group(1): m.group(0) for m in re.finditer(r"^\[\d+/\d+\] (\S+) .*$", output, re.MULTILINE)}


# The stages whose run cache is off by design (a plain output with `cache: false`): they
# rebuild in seconds and train nothing.
REBUILT = {"report", "explorer"}


def shown(driver: Path, env: dict) -> dict[str, dict]:
    """Experiment name -> its params and metrics, as `dvc exp show --json` gives them."""
    return {
        rev["name"]: rev["data"]
        for commit in json.loads(dvc_stdout(driver, env, "exp", "show", "--json"))
        for exp in commit.get("experiments") or []
        for rev in exp["revs"]
    }


@needs_netns
def test_the_docs_campaign_runs_on_two_ray_nodes_and_its_experiments_return_through_the_remotes(
    pipeline, cluster, tmp_path
):
    """docs/campaigns.md, line by line, from a fresh clone (no `origin`, no DVC remote): its
    remotes, the campaign on a local cluster, then the same campaign on the cluster the docs' lines
    started. Fashion-MNIST has no copy in the DVC remote and no network to download from, so
    its two points fail, named, their whole logs kept; the two MNIST points arrive in the git
    remote, list in `dvc exp show`, in the final table with the same values, and compare in
    `dvc plots diff`. On the cluster the same campaign keeps them and runs the failed ones again.
    On the local cluster's one node, one point fetches the baseline and the others find it. No
    point runs niced (Ray's workers default to nice 15; the docs' nodes say 0)."""
    inside, env = cluster
    driver = tmp_path / "driver"
    run(["git", "clone", "-q", str(pipeline[0]), str(driver)], tmp_path, env)
    dvc(driver, env, "pull", "--run-cache")
    run(["git", "remote", "remove", "origin"], driver, env)
    dvc(driver, env, "remote", "remove", "store")
    run([*GIT, "commit", "-qam", "a fresh clone: no remotes"], driver, env)
    run(["git", "init", "-q", "--bare", str(tmp_path / "origin.git")], tmp_path, env)
    paths = {"/path/to/origin.git": str(tmp_path / "origin.git"), "/path/to/dvc-store": str(tmp_path / "store")}
    for line in docs_blocks()[0]:
        done = shell(inside, line, driver, env, **paths)
        assert done.returncode == 0, line + done.stdout + done.stderr
    local, _, _, _, again = docs_blocks()[1]

    first = shell(inside, local, driver, env | {"XDG_CACHE_HOME": str(tmp_path / "cache")})
    print(first.stdout, first.stderr)
    assert first.returncode == 1, first.stdout + first.stderr
    lines = point_lines(first.stdout)
    finished = {name for name, line in lines.items() if ": done in " in line}
    failed = {name for name, line in lines.items() if ": FAILED after " in line}
    assert len(finished) == len(failed) == 2 and all("dataset=mnist" in lines[n] for n in finished), lines
    for name in failed:
        assert (
            "could not fetch train-images-idx3-ubyte.gz from any source"
            in (driver / "campaign-logs" / f"{name}.log").read_text()
        )
    assert "2 of 4 points failed" in first.stderr
    assert pushed_experiments(tmp_path / "origin.git", env) == finished
    fetched = sorted(int(n) for n in re.findall(r"fetched (\d+) files in", first.stdout))
    assert len(fetched) == 4 and fetched[:3] == [0, 0, 0] < fetched[3:], first.stdout  # one fetch per node

    points = campaign.points.expand(["vae.epochs=1,2", "dataset=mnist,fashion-mnist"], None)
    table = campaign.results.table(driver, points, dict.fromkeys(finished, "done") | dict.fromkeys(failed, "failed"))
    print(table)
    experiments = shown(driver, env)
    for name in finished:
        exp = experiments[name]
        assert table.loc[name, "vae.epochs"] == exp["params"]["params.yaml"]["data"]["vae"]["epochs"]
        assert table.loc[name, "vae test_loss"] == exp["metrics"]["metrics/vae.json"]["data"]["test_loss"]
        assert table.loc[name, "state"] == "done"
    assert re.search(r"^experiment\s*$", first.stdout, re.MULTILINE) or "verdicts held" in first.stdout

    again_run = shell(inside, again, driver, env)
    print(again_run.stdout, again_run.stderr)
    assert again_run.returncode == 1, again_run.stdout + again_run.stderr
    assert f"2 done before: {', '.join(sorted(finished))}" in again_run.stdout
    assert set(point_lines(again_run.stdout)) == failed
    # Both clusters run their points at nice 0: the local one by itself, the docs' by its lines.
    assert not any(" at nice " in line for out in (first, again_run) for line in point_lines(out.stdout).values())
    dvc(driver, env, "plots", "diff", *sorted(finished))
    assert (driver / "dvc_plots" / "index.html").is_file()


def test_every_docs_command_is_run_by_a_test():
    blocks = docs_blocks()
    assert len(blocks) == 2 and [len(b) for b in blocks] == [3, 5], blocks
    # The fixture `cluster` runs the token, head and node lines; the docs test the others.


@needs_netns
def test_two_campaigns_started_at_once_with_one_name(pipeline, cluster, tmp_path):
    """Two users start the same campaign at once under one name: one is refused before any task,
    the other completes; another campaign under that name is refused; the same one again keeps
    what it pushed."""
    inside, env = cluster
    repo, _, _ = pipeline
    origin, driver = campaign_remotes(repo, env, tmp_path)
    other = tmp_path / "other"
    run(["git", "clone", "-q", str(origin), str(other)], tmp_path, env)
    dvc(other, env, "remote", "modify", "--local", "store", "url", str(tmp_path / "store"))
    env = env | {"RAY_AUTH_MODE": "token"}
    cmd = [*inside, *on_cluster("-n", "twin", "-S", "vae.epochs=1")]
    both = [
        subprocess.Popen(cmd, cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for d in (driver, other)
    ]
    outputs = [p.communicate(timeout=300) for p in both]
    print(outputs)
    codes = [p.returncode for p in both]
    assert sorted(codes) == [0, 2], outputs
    refused = outputs[codes.index(2)][1]
    # Refused at its claim: pushed second, or it found the other's claim running.
    assert re.search(
        r"campaign name 'twin' was claimed on git remote 'origin' by another campaign|campaign 'twin' is running",
        refused,
    )
    assert "done in" in outputs[codes.index(0)][0]
    assert pushed_experiments(origin, env) == {"twin-1"}

    different = subprocess.run(
        [*inside, *on_cluster("-n", "twin", "-S", "vae.epochs=2")], cwd=driver, env=env, capture_output=True, text=True
    )
    assert different.returncode == 2 and "campaign name 'twin' is taken" in different.stderr, different.stderr
    rerun = subprocess.run(cmd, cwd=other, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0 and "1 done before: twin-1" in rerun.stdout, rerun.stdout + rerun.stderr


def unpushed(store: Path) -> list[str]:
    """The objects that a local DVC remote's run-cache entries name and the remote lacks."""
    named = {
        out["md5"]
        for entry in (store / "runs").glob("*/*/*")
        for out in yaml.safe_load(entry.read_text()).get("outs", [])
    }
    return sorted(md5 for md5 in named if not (store / "files" / "md5" / md5[:2] / md5[2:]).exists())


def immutable(path: Path, on: bool) -> None:
    """chattr: a folder that even root cannot write into (the tests run as root)."""
    subprocess.run(["chattr", "-R", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def chattr_works(tmp_path: Path) -> bool:
    (tmp_path / "probe").mkdir()
    done = subprocess.run(["chattr", "+i", str(tmp_path / "probe")], capture_output=True)
    subprocess.run(["chattr", "-i", str(tmp_path / "probe")], capture_output=True)
    return done.returncode == 0


@needs_netns
def test_a_push_that_fails_keeps_the_run_and_a_rerun_completes_it(pipeline, cluster, tmp_path):
    """The DVC remote turns read-only: the point restored from the run cache has nothing new
    to push and arrives; the one that fitted a PCA cannot push its outputs, so its ref never
    reaches the git remote; it is named with its kept clone and the command that finishes
    the push. With the remote back, a rerun of the campaign completes it (the node's cache had
    kept its run), and the kept clone's push would now replace nothing."""
    if not chattr_works(tmp_path):
        pytest.skip("chattr +i is not supported here")
    inside, env = cluster
    origin, driver = campaign_remotes(pipeline[0], env, tmp_path)
    env = env | {"RAY_AUTH_MODE": "token"}
    cmd = [*inside, *on_cluster("-n", "ro", "-S", "pca.components=2,3")]  # ro-1 is the pipeline's own run
    # ro-1 finds nothing to push however late it pushes: ro-2, running beside it, may by then
    # have put into the node's cache an object that a baseline entry names.
    assert not unpushed(tmp_path / "store")
    immutable(tmp_path / "store", True)
    try:
        failed = subprocess.run(cmd, cwd=driver, env=env, capture_output=True, text=True)
    finally:
        immutable(tmp_path / "store", False)
    print(failed.stdout, failed.stderr)
    kept = []
    try:
        assert failed.returncode == 1, failed.stdout + failed.stderr
        lines = point_lines(failed.stdout)
        assert ": done in " in lines["ro-1"], lines
        found = re.search(
            r"PUSH FAILED .*; its run is kept in (\S+) on that node; to finish the push there: (.+)$", lines["ro-2"]
        )
        assert found, lines
        kept.append(Path(found.group(1)))
        assert (kept[0] / "repo" / "dvc.lock").is_file()
        assert re.fullmatch(rf"cd {kept[0]}/repo && \S+ -m tools\.campaign --finish {kept[0]}", found.group(2))
        assert "push attempt 4 of 4 failed" in (driver / "campaign-logs" / "ro-2.log").read_text()
        assert pushed_experiments(origin, env) == {"ro-1"}  # no ref without its outputs
        assert "1 of 2 points failed" in failed.stderr
        # Status lines while ro-2 ran: node, stage, epoch, at most one per STATUS_S.
        status = re.findall(
            r"^campaign: ro-2 on 127\.0\.0\.1 [0-9a-f]{8}: (.*) \((\d+) s\)$", failed.stdout, re.MULTILINE
        )
        # A tiny stage takes seconds: a tick may or may not fall in one (the epoch: below).
        assert {text.split(",")[0] for text, _ in status} & {"pca", "pca_figures", "judge", "robustness"}, status
        seconds = [int(s) for _, s in status]
        assert all(b - a >= campaign.driver.STATUS_S - 1 for a, b in itertools.pairwise(seconds)), status

        rerun = subprocess.run(cmd, cwd=driver, env=env, capture_output=True, text=True)
        print(rerun.stdout, rerun.stderr)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "1 done before: ro-1" in rerun.stdout and ": done in " in point_lines(rerun.stdout)["ro-2"]
        assert pushed_experiments(origin, env) == {"ro-1", "ro-2"}
        finish = subprocess.run(["bash", "-c", found.group(2)], env=env, capture_output=True, text=True)
        assert finish.returncode == 1 and "stale info" in finish.stderr, finish.stdout + finish.stderr
    finally:
        for path in kept:
            shutil.rmtree(path, ignore_errors=True)


@needs_netns
def test_a_point_on_auto_takes_a_gpu_where_the_cluster_declares_one(pipeline, cluster, tmp_path):
    """On the cluster whose third node declares a GPU (`ray start --num-gpus=1`), a point whose
    device is auto asks Ray for one: Ray places it there and hands it GPU 0. Its data set is
    not in the remote, so it fails at once: the placement is what is checked, not CUDA."""
    inside, env = cluster
    _, driver = campaign_remotes(pipeline[0], env, tmp_path)
    args = ["--cpus=0.5", "-n", "gpu", "-S", "device=auto", "-S", "dataset=fashion-mnist"]
    done = subprocess.run(
        [*inside, *on_cluster(*args)], cwd=driver, env=env | {"RAY_AUTH_MODE": "token"}, capture_output=True, text=True
    )
    print(done.stdout, done.stderr)
    assert "a GPU for 1" in done.stdout, done.stdout
    assert re.search(
        r"^\[1/1\] gpu-1 .*: FAILED after \d+ s on node 127\.0\.0\.1 [0-9a-f]{8} with 0\.5 CPU, GPU 0;",
        done.stdout,
        re.MULTILINE,
    ), done.stdout


@needs_netns
def test_the_local_cluster_listens_on_loopback_alone_with_token_auth(tmp_path):
    """In a namespace where Ray could pick another address (10.9.0.1, with a default route),
    the local cluster (`RAY_ADDRESS=' Local '`) binds every port to 127.0.0.1, keeps its files in
    a private folder removed with it, though this
    shell says RAY_AUTH_MODE=disabled it takes a token (made, readable by its user alone; that a
    client without it is refused, the Ctrl-C test shows), its tasks run at nice 0 (as a command
    typed in a shell; Ray's default is 15), and `device: cuda` is refused for want of a GPU. With Ray
    made to listen everywhere (its single-machine setting off before the tool sets it), the
    tool's check of the real sockets refuses the cluster."""
    script = (
        "import subprocess; from tools import campaign; print(campaign.cluster.connect(None), flush=True)"
        # The sockets, while this driver holds the cluster (an idle driver's cluster went away
        # before a second process could look).
        "\nprint(subprocess.run(['ss', '-ltnH'], capture_output=True, text=True).stdout, flush=True)"
        # Ray's workers run at nice 15 unless told otherwise; a point's commands would inherit it.
        "\nimport os, ray; print('a task at nice', ray.get(ray.remote(lambda: os.nice(0)).remote()), flush=True)"
        "\nsession = ray._private.worker._global_node.get_session_dir_path(); print('sessions in', session)"
        "\nfolder = os.path.dirname(os.path.dirname(session))"
        "\nprint('its folder mode', oct(os.stat(folder).st_mode & 0o777), flush=True)"
        "\nfrom types import SimpleNamespace as N"
        "\npoint = campaign.points.Point(name='c-1', overrides=(('params.yaml', 'device=cuda'),))"
        "\ntry: campaign.driver.run([point], commit='0' * 40, remotes=None, params={'c-1': N(device='cuda')},"
        " cpus=1, where='it', claim=campaign.repository.Claim(done={}, leases={}))"
        "\nexcept campaign.CampaignError as err: print(err, flush=True)"
        "\ncampaign.cluster.shutdown()"
    )
    home = tmp_path / "home"
    env = {**os.environ, **RAY_ENV, "HOME": str(home), "RAY_ADDRESS": " Local ", "RAY_AUTH_MODE": "disabled"}
    with namespace(other_address="10.9.0.1") as inside:
        held = subprocess.run(
            [*inside, sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
    said = held.stdout.splitlines()
    assert any(
        re.fullmatch(
            rf"a local Ray cluster at 127\.0\.0\.1:\d+ \(token auth, new token in {home}/.ray/auth_token\)", line
        )
        for line in said
    ), held.stdout + held.stderr[-2000:]
    assert "device cuda in c-1, but it has no GPU" in said, said
    assert "a task at nice 0" in said, said
    # Ray makes its folders writable by every user: they live in a folder of this user's alone,
    # which goes with the cluster.
    session = Path(next(line for line in said if line.startswith("sessions in ")).removeprefix("sessions in "))
    private = session.parents[1]
    assert private.name.startswith("campaign-ray-") and "its folder mode 0o700" in said, said
    assert not private.exists(), sorted(private.rglob("*"))[:5]
    assert (home / ".ray" / "auth_token").stat().st_mode & 0o777 == 0o600
    ports = [line.split()[3] for line in said if line.startswith("LISTEN")]
    assert len(ports) >= 4 and all(on_loopback(p) for p in ports), ports

    wide = (
        # Ray imported first reads its settings then: the tool's come too late for it.
        "import os; os.environ['RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER'] = '1'; import ray; from tools import campaign"
        "\ntry: campaign.cluster.connect(None)\nexcept campaign.CampaignError as err: print(err)"
    )
    with namespace(other_address="10.9.0.1") as inside:
        refused_wide = subprocess.run(
            [*inside, sys.executable, "-c", wide],
            cwd=ROOT,
            env={**env, "RAY_AUTH_MODE": "token"},
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert re.match(
        r"the local Ray cluster listens on .*10\.9\.0\.1:\d+.*, not 127\.0\.0\.1 alone", refused_wide.stdout
    ), refused_wide.stdout + refused_wide.stderr[-2000:]


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:  # ended meanwhile
        return ""


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# A stage of the driver's repository alone, for the tests that stop a campaign: where gate.yaml
# says `wait: 1` it says so in a file and then waits for a file that the test never creates,
# so that the point is running when the signal comes, however loaded the machine is.
GATE = """import sys, time
from pathlib import Path
import yaml
if yaml.safe_load(Path("gate.yaml").read_text())["wait"]:
    (Path(sys.argv[1]) / "waiting").touch()
    while not (Path(sys.argv[1]) / "open").exists():
        time.sleep(0.2)
"""


def gated(driver: Path, env: dict, gate: Path) -> None:
    """The gate stage, committed and pushed to the driver's origin."""
    import yaml

    gate.mkdir()
    (driver / "gate.py").write_text(GATE)
    (driver / "gate.yaml").write_text("wait: 0\n")
    pipeline = yaml.safe_load((driver / "dvc.yaml").read_text())
    stage = {"cmd": f"python gate.py {gate}", "deps": ["gate.py"], "params": [{"gate.yaml": ["wait"]}]}
    pipeline["stages"]["gate"] = stage
    (driver / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    run(["git", "add", "gate.py", "gate.yaml", "dvc.yaml"], driver, env)
    run([*GIT, "commit", "-qm", "a gate"], driver, env)
    run(["git", "push", "-q", "origin", "HEAD"], driver, env)


@needs_netns
def test_ctrl_c_cancels_running_points_and_keeps_the_finished_ones(pipeline, tmp_path):
    """Ctrl-C (SIGINT to the driver's process group, as a terminal sends it) once one point has
    finished and the other waits at the gate (a stage that waits for the test, which never lets
    it on): the running one is cancelled, the finished one pulled, the table printed, exit 130;
    then no process is left in the namespace and no clone in the node's clone folder. Meanwhile
    a client without the local cluster's token (the shell says RAY_AUTH_MODE=disabled; the tool
    takes one all the same) is refused."""
    origin, driver = campaign_remotes(pipeline[0], pipeline[1], tmp_path)
    gated(driver, pipeline[1], tmp_path / "gate")
    env = {**pipeline[1], **RAY_ENV, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env["RAY_AUTH_MODE"] = "disabled"  # this shell's say: the tool's local cluster takes a token all the same
    with namespace() as inside:
        net = os.readlink(inside[1].removeprefix("--net="))
        # Half a CPU each: both points run at once on any machine, so the gated one cannot hold
        # the only CPU while the other waits for it.
        campaign_run = subprocess.Popen(
            [*inside, sys.executable, "-m", "tools.campaign", "-n", "stop", "--cpus=0.5", "-S", "gate.yaml:wait=0,1"],
            cwd=driver, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        output, client = [], None
        for line in campaign_run.stdout:
            output.append(line)
            if found := re.search(r"on a local Ray cluster at (127\.0\.0\.1:\d+) \(token auth", line):
                # Another user's shell: no token, Ray's default of no auth: refused.
                join = "import ray, sys; ray.init(address=sys.argv[1]); print('joined')"
                no_token = {**env, "HOME": str(tmp_path / "elsewhere"), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
                client = subprocess.Popen(
                    [*inside, sys.executable, "-c", join, found.group(1)],
                    env=no_token, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                )  # fmt: skip
            if "] stop-1 " in line:
                break
        refused_client = client.communicate(timeout=120)
        deadline = time.monotonic() + 300
        while not (tmp_path / "gate" / "waiting").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "gate" / "waiting").exists(), "stop-2 never reached the gate"
        assert [pid for pid in members(net) if "exp run" in cmdline(pid) and "stop-2" in cmdline(pid)]
        os.killpg(campaign_run.pid, signal.SIGINT)
        rest, _ = campaign_run.communicate(timeout=180)
        output = "".join(output) + rest
        print(output)
        deadline = time.monotonic() + 15
        while set(members(net)) - {holder(inside)} and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {pid: cmdline(pid) for pid in set(members(net)) - {holder(inside)}}
    assert campaign_run.returncode == 130, output
    assert ": done in " in point_lines(output)["stop-1"] and "stop-2" not in point_lines(output), output
    assert (
        "campaign: interrupted: cancelling 1 running points (SIGINT)" in output and "campaign: pulled stop-1;" in output
    )
    assert re.search(r"^stop-2\s+1\s+cancelled\s", output, re.MULTILINE), output
    assert "Traceback" not in output
    assert not left, left
    assert not list(clones_under(tmp_path / "cache").glob("*stop-*")), list(clones_under(tmp_path / "cache").iterdir())
    assert client.returncode != 0 and "joined" not in refused_client[0], refused_client
    assert "InvalidAuthToken: Authentication token is missing or incorrect" in refused_client[1], refused_client
    assert pushed_experiments(origin, env) == {"stop-1"}


@needs_netns
def test_a_point_whose_worker_is_lost_mid_run_is_retried_and_arrives_once(pipeline, tmp_path):
    """The worker running the point is killed while `dvc exp run` runs: Ray runs the point
    again, the experiment arrives once, and the lost run's `dvc exp run` ends within seconds
    instead of pushing later beside the retry. No code of the tool's ends it (started in a
    session of its own, it ended all the same): Ray does, and this checks that it still does.
    The lost run's clone, which its killed worker could not remove, is swept by the retry."""
    repo, env, _ = pipeline
    origin, driver = campaign_remotes(repo, env, tmp_path)
    env = {**env, **RAY_ENV, "HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    with namespace() as inside:
        net = os.readlink(inside[1].removeprefix("--net="))
        campaign_run = subprocess.Popen(
            [*inside, sys.executable, "-m", "tools.campaign", "-n", "lost", "-S", "pca.components=3"],
            cwd=driver,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the first attempt's `dvc exp run`, and its worker
            found = [pid for pid in members(net) if "exp run" in cmdline(pid)]
            if found:
                break
            time.sleep(0.1)
        (exp_run,) = found
        worker = int(Path(f"/proc/{exp_run}/stat").read_text().rsplit(")", 1)[1].split()[1])
        assert cmdline(worker).startswith("ray::lost-1"), cmdline(worker)
        (lost_clone,) = clones_under(tmp_path / "cache").glob("lost-*")
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 10  # the lost run's `dvc exp run` needs 30 s more on its own
        while running(exp_run) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not running(exp_run), "the lost worker's `dvc exp run` went on without it"
        output, _ = campaign_run.communicate(timeout=300)
        print(output)
    assert campaign_run.returncode == 0, output
    assert re.search(r"^\[1/1\] lost-1 \(pca\.components=3\): done in ", output, re.MULTILINE), output
    assert pushed_experiments(origin, env) == {"lost-1"}
    assert not lost_clone.exists() and not list(clones_under(tmp_path / "cache").glob("*lost-*"))
