import httpx

from tests.support import deposit, manifest, sign


def test_deposit_and_read_back(stack):
    sg = stack.office("SG")
    files = {"sr-1": b"%PDF-1.7 search report", "claims-1": b"%PDF-1.7 claims"}
    r = deposit(sg, sign(manifest("SG", files), sg.key), files)
    assert r.status_code == 201, r.text
    dossier_id = r.json()["dossier_id"]
    got = httpx.get(f"{stack.url}/v1/dossiers/{dossier_id}/documents/sr-1", headers=sg.headers)
    assert got.status_code == 200
    assert got.content == files["sr-1"]
