"""Concurrent creates of one name: exactly one wins, the rest get 409."""

from concurrent.futures import ThreadPoolExecutor

from conftest import create, make_zip


def test_concurrent_creates_of_the_same_name(server):
    clients = [server.client() for _ in range(8)]

    def attempt(index):
        zip_bytes = make_zip({"app.py": f"VERSION = {index}\n"})
        try:
            create(clients[index], "contested", zip_bytes)
            return "created"
        except clients[index].exceptions.ResourceConflictException:
            return "conflict"

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count("created") == 1, results
    assert results.count("conflict") == 7, results
    # The losers' packages are not left behind.
    assert len(list((server.data_dir / "code" / "sha256").iterdir())) == 1


def test_concurrent_updates_keep_a_consistent_function(server):
    lam = server.client()
    create(lam, "busy")

    def update(memory):
        try:
            server.client().update_function_configuration(FunctionName="busy", MemorySize=memory)
            return memory
        except Exception as error:  # a conflict with an update in flight is allowed
            assert error.response["Error"]["Code"] == "ResourceConflictException"
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        applied = [m for m in pool.map(update, range(128, 134)) if m is not None]
    assert applied, "at least one update goes through"
    final = lam.get_function_configuration(FunctionName="busy")
    assert final["MemorySize"] in applied
    assert final["LastUpdateStatus"] == "Successful"
