"""What the magics wrap, called as plain Python: the option checks and the one error path."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from colab_magics.guard import Guard
from colab_magics.guard_command import guard_command
from colab_magics.magic_output import usage_errors
from colab_magics.sync_command import sync_request


@pytest.mark.parametrize(
    ("action", "paths", "options", "message"),
    [
        ("pull", ["a", "b"], {"delete": True, "dry_run": True}, "--delete --dry-run does not go "
         "with pull"),
        ("push", ["a", "b"], {"extract": True}, "--extract does not go with push"),
        ("push", ["a", "b"], {"max_size": "1G"}, "--max-size does not go with push"),
        ("push", ["a"], {}, "push takes two paths: LOCAL DRIVE_PATH"),
        ("pull", ["a", "b", "c"], {}, "pull takes two paths: DRIVE_PATH LOCAL"),
        ("push", ["a", "b"], {"shard": -2}, "--jobs and --shard need a number of at least 1"),
        ("pull", ["a", "b"], {"max_size": "lots"}, "--max-size: 'lots' is not a size"),
        ("push", ["a", "gs://b/c"], {"watch": True}, "--watch works with Drive paths only"),
        ("stop", ["a", "b"], {}, "the action is push or pull"),
    ],
)  # fmt: skip
def test_options_that_do_not_go_together_are_refused_before_any_transfer(
    action, paths, options, message
):
    with pytest.raises(ValueError, match=message.replace("-", r"\-")):
        sync_request(action, paths, **options)


def test_a_checked_request_carries_its_parsed_options():
    request = sync_request("pull", ["gs://b/data", "/tmp/x"], max_size="2K", extract=True)
    assert (request.bucket, request.max_size, request.extract) == (True, 2000, True)
    assert request.title == "drive_sync pull gs://b/data → /tmp/x"


def test_usage_errors_makes_one_line_hides_secrets_and_lets_the_rest_through():
    with pytest.raises(UsageError) as caught, usage_errors(OSError, template="x: {}",
                                                            secrets=["hunter2"]):  # fmt: skip
        raise OSError("cannot open\nhunter2.txt")
    assert str(caught.value) == "x: cannot open ….txt"
    with pytest.raises(UsageError, match="^as it was$"), usage_errors(OSError, template="x: {}"):
        raise UsageError("as it was")
    with pytest.raises(KeyError), usage_errors(OSError):
        raise KeyError("not known: a bug keeps its traceback")


def test_guard_command_turns_the_guard_off_and_on_and_needs_a_path_to_watch(tmp_path):
    def no_client():
        raise AssertionError("switching the guard must not contact Drive")

    guard = Guard(no_client, mount_root=tmp_path)
    assert guard_command(guard, "off") == [f"Drive guard off; mount {tmp_path}; watching nothing."]
    assert guard_command(guard, "on", warn=True)[-1].startswith("Drive guard on (warn only);")
    with pytest.raises(ValueError, match="%drive_guard watch needs a mount path"):
        guard_command(guard, "watch")
