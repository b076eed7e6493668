"""Misconfiguration stops the start with a message naming the variable."""

import subprocess
import sys

import pytest

from tests.process_fixtures import ROOT


def django_setup(tmp_path, **env_overrides: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "AGENTDESK_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        **env_overrides,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('ok')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("DATABASE_URL", "not a url"),
        ("REDIS_URL", "http://localhost:6379"),
        ("DEBUG", "maybe"),
        ("PUBLIC_BASE_URL", "ftp://example.com"),
        ("SECRET_KEY", "short"),
        ("EMULATOR_URL", "localhost:8100"),
        ("CELERY_VISIBILITY_TIMEOUT", "soon"),
    ],
)
def test_a_wrong_value_stops_the_start_naming_the_variable(tmp_path, variable, value):
    result = django_setup(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert variable in result.stderr


def test_defaults_work_on_a_fresh_machine_and_the_secret_key_is_generated_once(tmp_path):
    first = django_setup(tmp_path)
    assert first.returncode == 0, first.stderr
    key_file = tmp_path / "secret_key"
    key = key_file.read_text()
    assert len(key) >= 50
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert django_setup(tmp_path).returncode == 0
    assert key_file.read_text() == key


def test_debug_and_demo_mode_are_off_unless_asked(settings):
    # The suite runs with no DEBUG/AGENTDESK_DEMO set; production never gets demo logins.
    import os

    if "DEBUG" not in os.environ:
        assert settings.DEBUG is False
    if "AGENTDESK_DEMO" not in os.environ:
        assert settings.DEMO_MODE is False


def test_a_unix_socket_redis_url_keeps_its_database_for_celery(tmp_path, monkeypatch):
    import redis
    from kombu import Connection

    from agentdesk.devstack import PrivateRedis
    from agentdesk.env import celery_broker_url

    assert celery_broker_url("redis://h:6379/3") == "redis://h:6379/3"
    assert celery_broker_url("unix:/v/redis.sock") == "redis+socket:///v/redis.sock"
    assert celery_broker_url("unix:///v/r.sock?db=13") == "redis+socket:///v/r.sock?virtual_host=13"

    # Over a real socket: a message sent through kombu lands in database 13, not 0.
    monkeypatch.setenv("AGENTDESK_VAR_DIR", str(tmp_path))
    server = PrivateRedis()
    url = server.start()
    try:
        with Connection(celery_broker_url(f"{url}?db=13")) as conn:
            queue = conn.SimpleQueue("agentdesk-db-probe")
            queue.put({"probe": 1})
            queue.close()
        assert redis.Redis.from_url(f"{url}?db=13").llen("agentdesk-db-probe") == 1
        assert redis.Redis.from_url(url).llen("agentdesk-db-probe") == 0
    finally:
        server.stop()


def test_production_settings_pass_check_deploy(tmp_path):
    """Served over https with a real secret and host, `check --deploy` has nothing to say: HSTS,
    the SSL redirect, secure and HttpOnly cookies, the CSP and framing are all on."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AGENTDESK_VAR_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        "PUBLIC_BASE_URL": "https://desk.example.com",
        "ALLOWED_HOSTS": "desk.example.com",
        "SECRET_KEY": "x7!Kq2@pLr9#Zt4$Wm8^Nv3&Bc6*Hd1(Fg5)Js0_Ty2+Ue7=Oa9-Ri4?Xs",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_plain_http_development_turns_no_https_only_setting_on(settings):
    # The suite and `make run` serve http://127.0.0.1: an SSL redirect or HSTS would break them.
    assert not settings.SECURE_SSL_REDIRECT
    assert settings.SECURE_HSTS_SECONDS == 0
    assert settings.CSRF_COOKIE_HTTPONLY and settings.SESSION_COOKIE_HTTPONLY


def test_the_web_process_keeps_no_database_connection_between_requests(tmp_path):
    """Under ASGI each request runs in a thread of its own: a persistent connection would stay
    open per request until collected (a daphne ran PostgreSQL out of connections under load,
    bench/load_bench.py). Workers and commands keep theirs."""
    env = {
        "PATH": "/usr/bin:/bin",
        "AGENTDESK_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "postgres://nobody@127.0.0.1:9/unused",
    }
    show = "from django.conf import settings; print(settings.DATABASES['default']['CONN_MAX_AGE'])"
    ages = {}
    for process, setup in (
        ("web", "import agentdesk.asgi"),
        (
            "worker",
            "import os, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'agentdesk.settings'; django.setup()",
        ),
    ):
        result = subprocess.run(
            [sys.executable, "-c", f"{setup}; {show}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        ages[process] = result.stdout.strip()
    assert ages == {"web": "0", "worker": "60"}


def test_under_asgi_the_middleware_chain_runs_in_one_thread(monkeypatch):
    """daphne serves Django through ASGI. A MiddlewareMixin whose inner handler is async runs
    each of its methods through ``sync_to_async``, a hop to a thread and back; with the project's
    middleware that was eight hops on every request (on the agent's wait after Save too). With
    a sync-only middleware innermost, every one of them runs sync, in the one thread Django
    runs the chain in."""
    from django.core.handlers.asgi import ASGIHandler
    from django.utils.deprecation import MiddlewareMixin

    built = []
    original = MiddlewareMixin.__init__

    def recording(self, get_response):
        original(self, get_response)
        built.append(self)

    monkeypatch.setattr(MiddlewareMixin, "__init__", recording)
    ASGIHandler()
    assert len(built) >= 8  # security, sessions, common, csrf, auth, messages, clickjacking, csp
    assert [type(m).__name__ for m in built if m.async_mode] == []
