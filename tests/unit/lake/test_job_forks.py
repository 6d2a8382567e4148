"""The job fork server's rules that need no server running: which requests it refuses, and which jobs never
hand off."""

from __future__ import annotations

import socket

import pytest

from include.lake import job_forks

pytestmark = pytest.mark.unit
REQUEST = {"module": "spark_jobs.build_gold", "argv": [], "env": {}, "cwd": "/"}


@pytest.fixture
def server() -> job_forks.ForkServer:
    return job_forks.ForkServer("unused.sock", ["spark_jobs.build_gold"])


def test_a_request_for_a_preloaded_job_with_three_streams_is_taken(server) -> None:
    assert server._problem(REQUEST, [5, 6, 7]) is None


@pytest.mark.parametrize(
    ("request_", "fds", "problem"),
    [
        ({**REQUEST, "module": "os"}, [5, 6, 7], "module must be one of spark_jobs.build_gold, got 'os'"),
        ({"module": "spark_jobs.build_gold"}, [5, 6, 7], "a request names module, argv, env and cwd"),
        ([], [5, 6, 7], "a request names module, argv, env and cwd"),
        (REQUEST, [5], "a request passes 3 file descriptors (stdin, stdout, stderr), got 1"),
    ],
)
def test_requests_it_refuses_say_why(server, request_, fds, problem) -> None:
    assert server._problem(request_, fds) == problem


def test_a_code_change_since_the_server_started_is_refused(server) -> None:
    count, newest = server.stamp
    server.stamp = (count, newest - 1)
    assert server._problem(REQUEST, [5, 6, 7]) == "Setlist's code changed since the fork server started"


def test_a_classic_spark_submit_driver_never_hands_off(tmp_path, monkeypatch) -> None:
    path = str(tmp_path / "jobs.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        monkeypatch.setenv(job_forks.SOCKET_VAR, path)
        monkeypatch.setenv("PYSPARK_GATEWAY_PORT", "40000")  # this process is the driver's Python
        monkeypatch.delenv("PYSPARK_REMOTE_INIT_CONF_LEN", raising=False)
        assert job_forks.hand_off("build_gold", []) is None
        listener.settimeout(0.1)
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected


def test_no_socket_named_or_none_answering_means_no_hand_off(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(job_forks.SOCKET_VAR, raising=False)
    assert job_forks.hand_off("build_gold", []) is None
    monkeypatch.setenv(job_forks.SOCKET_VAR, str(tmp_path / "none.sock"))
    assert job_forks.hand_off("build_gold", []) is None


@pytest.mark.parametrize(("argv", "got"), [(["nope", "--run-date", "2026-11-01"], "got 'nope'"), ([], "none given")])
def test_the_entry_point_names_the_steps_it_runs(capsys, argv, got) -> None:
    assert job_forks.launch(argv) == job_forks.EXIT_USAGE
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("[setlist] STEP: must be one of build_gold, build_silver, ingest_bronze, maintain,")
        and got in err
    )
