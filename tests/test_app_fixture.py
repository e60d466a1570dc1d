"""The shared test app goes back to how it was built before every test (tests/conftest.py)."""

from __future__ import annotations

from server.limits import enforce, limiter


def test_restore_undoes_what_a_test_changes(_rolled_back_app, app) -> None:
    app.config["RATELIMIT_SMS_PER_CLIENT"] = "1/hour"
    app.config["RATELIMIT_STORAGE_OPTIONS"]["key_prefix"] = "changed"
    app.config["SOMETHING_NEW"] = 1
    app.extensions["aidline.periodic_jobs"].append(lambda session, now: None)
    jobs = len(_rolled_back_app.extensions["aidline.periodic_jobs"])
    with app.test_request_context():
        enforce("1/hour", scope="fixture", key="k")
    limiter._storage_dead = True

    _rolled_back_app.restore()

    assert app.config["RATELIMIT_SMS_PER_CLIENT"] != "1/hour"
    assert app.config["RATELIMIT_STORAGE_OPTIONS"]["key_prefix"] != "changed"
    assert "SOMETHING_NEW" not in app.config
    assert len(app.extensions["aidline.periodic_jobs"]) == jobs
    assert not limiter._storage_dead
    with app.test_request_context():
        enforce("1/hour", scope="fixture", key="k")  # the counter is empty again: no 429
