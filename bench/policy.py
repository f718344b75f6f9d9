"""Access-policy benchmark: family look-ups and access decisions on a large synthetic register.

    python bench/policy.py [--quick] [--explain] [--samples N] [--seed S]

Creates a throwaway database ``bench_policy_<pid>`` on 127.0.0.1:5432 (user postgres), builds
the schema with the Alembic migrations, fills it on the PostgreSQL side (``INSERT ... SELECT``
over ``generate_series``) and drops it ``WITH (FORCE)`` at the end, whatever happens.

Data (full / ``--quick``): 1,000,000 / 100,000 applications across 20 offices, in families of
1-6 members (every later member claims the first filing's priority; ~10 % of families also
share a PCT application); correspondence keys as ``registry._index_correspondence`` writes them
("number", "priority", "pct"); 200,000 / 20,000 dossiers of 2-4 documents (SR, WO, ER, CLAIMS)
with their blobs, citations and receipts; about half the applications published; 50 agreements
of 2-9 members (mostly active); ASPEC requests between family members. Numbers are written
in each office's own format and their keys are those of ``dossiers.numbers.normalise`` (checked
on a sample after generation).

Measured in this process with SQLAlchemy sessions, one session and transaction, the identity
map cleared before every sample, 200 warm-up calls, N samples (2000 unless ``--samples``):

1. baseline        ``session.get(Application, id)``: a bare primary-key SELECT;
2. family          ``repository.family(session, id)`` for random applications; goal p99 < 10 ms;
3. decision        ``Gate(session, Scope.office(viewer), "bench").decide(dossier, audit_it=False)`` for a random
                   dossier (already loaded) and a random viewer office other than its own, a fresh
                   Gate each time; goal p99 < 2 ms;
4. load+decision   ``repository.dossier(session, id)`` then the same decision (no goal).

p50/p95/p99 in ms and p99 over the baseline's p99, with the statements a call sends, the mean
time spent inside ``cursor.execute`` and the ORM objects it loads. Diagnostics: "round trip" is
``SELECT 1`` through psycopg alone (the floor of any statement here), and the two steps of a
decision (``repository.decision_facts``, one statement gathering the correspondence, the ASPEC
requests and the agreements of both offices; then the pure policy) are timed one by one.
When a goal is missed (or with ``--explain``) the statements of one family look-up, one dossier
load and one decision are run under ``EXPLAIN (ANALYZE, BUFFERS)``; a sequential scan or a
filter discarding rows on a large table, or a statement over 0.5 ms, is flagged with the index
that would serve it. PASS/MISS never fails the run. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy import event, select  # noqa: E402

import migrations  # noqa: E402
from dossiers import numbers, policy, repository  # noqa: E402
from dossiers.db import Base, make_engine, make_session_factory, utcnow  # noqa: E402
from dossiers.models import Application  # noqa: E402
from dossiers.scope import Scope  # noqa: E402
from exchange.access.gate import Gate  # noqa: E402

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
ASEAN = ["SG", "MY", "TH", "VN", "ID", "PH", "BN", "KH", "LA"]
OFFICES = ASEAN + ["JP", "US", "EP", "CN", "KR", "AU", "CA", "GB", "DE", "IN", "BR"]
assert len(OFFICES) == 20  # the member stride 7 below needs gcd(7, 20) == 1
DOC_TYPES = ["SR", "WO", "ER", "CLAIMS"]
GOALS_MS = {"family": 10.0, "decision": 2.0}
WARMUP = 200
DECISION_PARTS = ("facts (one statement)", "policy.decide")


# --- data generation (PostgreSQL side) ---------------------------------------------------------

def _office_case(kind: str) -> str:
    """SQL CASE over ``office`` giving an application's number (kind "number"), its key ("key"),
    its publication number ("pub") or publication key ("pubkey"), from ``yr`` (2010-2019) and
    ``s`` (0-99999), which together are unique per application. The keys equal
    ``numbers.normalise(office, number)`` (checked after generation)."""
    Y, YY, D, C = "yr::text", "lpad((yr % 100)::text, 2, '0')", "(yr % 10)::text", "(s % 10)::text"
    Y1 = "(yr + 1)::text"

    def p(n: int) -> str:
        return f"lpad(s::text, {n}, '0')"

    chk = "chr(80 + s % 10)"
    p4x = "(CASE WHEN s < 10000 THEN lpad(s::text, 4, '0') ELSE s::text END)"
    spec = {  # office: (number, key)
        "SG": (f"'10' || {Y} || {p(5)} || {chk}", f"'SG:10' || {Y} || {p(5)} || {chk}"),
        "MY": (f"'PI ' || {Y} || {p(6)}", f"'MY:PI' || {Y} || {p(6)}"),
        "TH": (f"{YY} || '01' || {p(6)}", f"'TH:' || {YY} || '01' || {p(6)}"),
        "VN": (f"'1-' || {Y} || '-' || {p(5)}", f"'VN:1' || {Y} || {p(5)}"),
        "ID": (f"'P00' || {Y} || {p(5)}", f"'ID:P00' || {Y} || {p(5)}"),
        "PH": (f"'1/' || {Y} || '/' || {p(6)}", f"'PH:1' || {Y} || {p(6)}"),
        "BN": (f"'BN/N/' || {Y} || '/' || {p4x}", f"'BN:N' || {Y} || {p4x}"),
        "KH": (f"'KH/P/' || {Y} || '/' || {p(5)}", f"'KH:P' || {Y} || {p(5)}"),
        "LA": (f"'LA/P/' || {Y} || '/' || {p(6)}", f"'LA:P' || {Y} || {p(6)}"),
        "JP": (f"{Y} || '-' || {p(6)}", f"'JP:' || {Y} || {p(6)}"),
        "US": (f"'1' || {D} || '/' || substr({p(6)}, 1, 3) || ',' || substr({p(6)}, 4, 3)", f"'US:1' || {D} || {p(6)}"),
        "EP": (f"{YY} || {p(6)} || '.' || {C}", f"'EP:' || {YY} || {p(6)}"),
        "CN": (f"{Y} || '1' || {p(7)} || '.' || {C}", f"'CN:' || {Y} || '1' || {p(7)}"),
        "KR": (f"'10-' || {Y} || '-' || {p(7)}", f"'KR:10' || {Y} || {p(7)}"),
        "AU": (f"{Y} || {p(6)}", f"'AU:' || {Y} || {p(6)}"),
        "CA": (f"'3' || {YY} || {p(6)}", f"'CA:3' || {YY} || {p(6)}"),
        "GB": (f"'GB' || {YY} || {p(5)} || '.' || {C}", f"'GB:GB' || {YY} || {p(5)} || {C}"),
        "DE": (f"'10 ' || {Y} || ' ' || {p(6)} || '.' || {C}", f"'DE:10' || {Y} || {p(6)} || {C}"),
        "IN": (f"{Y} || {p(8)}", f"'IN:' || {Y} || {p(8)}"),
        "BR": (f"'BR 10 ' || {Y} || ' ' || {p(6)} || '-' || {C}", f"'BR:BR10' || {Y} || {p(6)} || {C}"),
    }
    pubs = {  # offices whose publications have a series of their own; the others publish under the number
        "SG": (f"{spec['SG'][0]} || ' A'", spec["SG"][1]),
        "US": (f"'US ' || {Y1} || '/' || {p(7)} || ' A1'", f"'US:' || {Y1} || {p(7)}"),
        "EP": (f"'EP 3' || {D} || {p(5)} || ' A1'", f"'EP:3' || {D} || {p(5)}"),
        "CN": (f"'CN 1' || {YY} || {p(6)} || ' A'", f"'CN:1' || {YY} || {p(6)}"),
        "KR": (f"'10-' || {Y1} || '-' || {p(7)}", f"'KR:10' || {Y1} || {p(7)}"),
        "JP": (f"'特開' || {Y1} || '-' || {p(6)}", f"'JP:' || {Y1} || {p(6)}"),
    }
    i = {"number": 0, "key": 1, "pub": 0, "pubkey": 1}[kind]
    table = pubs if kind.startswith("pub") else {}
    whens = " ".join(f"WHEN '{o}' THEN {table.get(o, spec[o])[i]}" for o in OFFICES)
    return f"(CASE office {whens} END)"


def _offices_array() -> str:
    return "ARRAY[" + ", ".join(f"'{o}'" for o in OFFICES) + "]::text[]"


def _agreements(rng: random.Random, count: int) -> tuple[list[tuple], list[tuple]]:
    """``count`` agreements (mostly active) and their members, generated here: 50 rows."""
    rows, members = [], []
    for i in range(count):
        program = rng.choices(["ASPEC", "CASE", "BILATERAL"], weights=[3, 3, 4])[0]
        if program == "ASPEC":
            pool, k = ASEAN, rng.randint(3, 9)
        elif program == "BILATERAL":
            pool, k = OFFICES, rng.randint(2, 3)
        else:
            pool, k = OFFICES, rng.randint(4, 9)
        codes = sorted(rng.sample(pool, k))
        status = rng.choices(["active", "suspended", "terminated"], weights=[8, 1, 1])[0]
        year = rng.randint(2012, 2023)
        until = rng.choices([None, f"{rng.randint(2027, 2035)}-12-31", f"{rng.randint(2016, 2024)}-06-30"],
                            weights=[7, 2, 1])[0]
        if until is not None and int(until[:4]) <= year:
            until = None
        types = sorted(rng.sample(DOC_TYPES, rng.randint(1, 4)))
        rows.append((f"00000000-0000-4000-8000-{i:012d}", f"{program} {'-'.join(codes)} #{i}", program,
                     json.dumps(types), f"{year}-01-01T00:00:00+00:00",
                     None if until is None else until + "T00:00:00+00:00", status,
                     rng.random() < 0.75, rng.random() < 0.25))
        members += [(rows[-1][0], c) for c in codes]
    return rows, members


def generate(url: str, n_apps: int, n_dossiers: int, seed: int, say) -> dict:
    """Fill the database; returns counts and per-step timings."""
    rng = random.Random(seed)
    steps: list[tuple[str, float]] = []
    offs = _offices_array()
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("SET synchronous_commit = off")
        c.execute("SET statement_timeout = '15min'")
        c.execute("SET maintenance_work_mem = '256MB'")
        c.execute("SET work_mem = '64MB'")
        try:  # consistent by construction: skip the per-row FK triggers while loading
            c.execute("SET session_replication_role = replica")
            fk_skipped = True
        except psycopg.Error:
            fk_skipped = False
        c.execute("SELECT setseed(%s)", (((seed % 1000) / 1000.0),))

        def step(name: str, sql: str, params=None) -> None:
            t = time.perf_counter()
            c.execute(sql, params)
            steps.append((name, time.perf_counter() - t))
            say(f"  {name:<34} {steps[-1][1]:7.2f} s")

        step("offices", f"""
            INSERT INTO office (code, name, roles, settings, created_at, updated_at)
            SELECT o, 'Intellectual property office ' || o,
                   '["depositor", "examiner", "office-admin"]'::jsonb, '{{}}'::jsonb, now(), now()
            FROM unnest({offs}) o""")
        # Families: sizes 1-6 (mean ~2.4), consecutive application ids, the first member is the first
        # filing; member m files at office (base + 7 m) mod 20, so the members' offices differ.
        step("families (temp)", f"""
            CREATE TEMP TABLE fam AS
            WITH f AS (
                SELECT g AS fid, floor(random() * 20)::int AS base, random() AS rp,
                       CASE WHEN r < 0.34 THEN 1 WHEN r < 0.60 THEN 2 WHEN r < 0.78 THEN 3
                            WHEN r < 0.89 THEN 4 WHEN r < 0.96 THEN 5 ELSE 6 END AS sz
                FROM (SELECT g, random() AS r FROM generate_series(1, {n_apps}) g) x),
            c AS (SELECT f.*, sum(sz) OVER (ORDER BY fid) - sz AS start FROM f)
            SELECT fid, base, least(sz, {n_apps} - start)::int AS sz, start::int AS start,
                   (sz >= 2 AND rp < 0.15) AS pct
            FROM c WHERE start < {n_apps}""")
        step("applications (temp)", f"""
            CREATE TEMP TABLE app_stage AS
            SELECT *, {_office_case('number')} AS number, {_office_case('key')} AS number_key,
                   {_office_case('pub')} AS pub_number, {_office_case('pubkey')} AS pub_key
            FROM (
                SELECT f.start + m + 1 AS id, f.fid, m, f.start + 1 AS first_id, f.pct AND m > 0 AS has_pct,
                       ({offs})[1 + (f.base + 7 * m) % 20] AS office, ({offs})[1 + f.base] AS ro,
                       2010 + (f.start + m) / 100000 AS yr, (f.start + m) % 100000 AS s,
                       date '2010-01-04' + (f.start::bigint * 3650 / {n_apps})::int
                         + CASE WHEN m = 0 THEN 0 ELSE 40 * m + floor(random() * 30)::int END AS filing_date,
                       random() < 0.5 AS published
                FROM fam f, generate_series(0, f.sz - 1) m) x""")
        step("application", """
            INSERT INTO application (id, office_code, number, number_key, filing_date, title, ipc, pct_number,
                                     pct_key, publication_number, publication_key, publication_date,
                                     created_at, updated_at)
            SELECT a.id, a.office, a.number, a.number_key, a.filing_date,
                   (ARRAY['Method and apparatus for', 'System for', 'Composition for', 'Device and method for',
                          'Process of'])[1 + a.fid % 5] || ' ' ||
                   (ARRAY['wireless channel estimation', 'battery electrode coating', 'rice blast resistance',
                          'palm oil fractionation', 'image segmentation', 'antibody purification',
                          'container lashing', 'solar cell passivation', 'payment tokenisation',
                          'rubber vulcanisation', 'video decoding', 'vaccine adjuvants'])[1 + a.fid % 12],
                   jsonb_build_array((ARRAY['H04L 9/32', 'H01M 4/04', 'A01H 6/46', 'C11B 7/00', 'G06T 7/11',
                          'C07K 1/22', 'B63B 25/24', 'H01L 31/18', 'G06Q 20/38', 'C08K 5/00',
                          'H04N 19/70', 'A61K 39/39'])[1 + a.fid % 12],
                          (ARRAY['G06N 3/08', 'H04W 72/04', 'B01D 15/08'])[1 + a.fid % 3]),
                   CASE WHEN a.has_pct THEN 'PCT/' || a.ro || (2010 + (a.first_id - 1) / 100000) || '/'
                        || lpad(((a.first_id - 1) % 100000)::text, 6, '0') END,
                   CASE WHEN a.has_pct THEN 'PCT:' || a.ro || (2010 + (a.first_id - 1) / 100000)
                        || lpad(((a.first_id - 1) % 100000)::text, 6, '0') END,
                   CASE WHEN a.published THEN a.pub_number END,
                   CASE WHEN a.published THEN a.pub_key END,
                   CASE WHEN a.published THEN a.filing_date + 548 END,
                   (a.filing_date + time '09:00') AT TIME ZONE 'UTC',
                   (a.filing_date + time '09:00') AT TIME ZONE 'UTC'
            FROM app_stage a ORDER BY a.id""")
        step("priority_claim", """
            INSERT INTO priority_claim (application_id, office, number, number_key, date)
            SELECT a.id, f.office_code, f.number, f.number_key, f.filing_date
            FROM app_stage a JOIN application f ON f.id = a.first_id WHERE a.m > 0 ORDER BY a.id""")
        step("correspondence_key", """
            INSERT INTO correspondence_key (application_id, key, kind)
            SELECT id, number_key, 'number' FROM application
            UNION ALL
            SELECT application_id, number_key, 'priority' FROM priority_claim
            UNION ALL
            SELECT id, pct_key, 'pct' FROM application WHERE pct_key IS NOT NULL""")
        step("dossiers (temp)", f"""
            CREATE TEMP TABLE dos_stage AS
            SELECT x.k, md5('bench-dossier-' || x.k)::uuid::text AS id, a.id AS app_id, a.office_code,
                   2 + floor(random() * 3)::int AS ndocs, 1 + floor(random() * 4)::int AS ncit,
                   a.filing_date + 200 + floor(random() * 700)::int AS issued,
                   a.number, a.filing_date, a.title, a.ipc, a.pct_number, a.publication_number, a.publication_date
            FROM (SELECT k, 1 + floor(random() * {n_apps})::int AS app_id
                  FROM generate_series(1, {n_dossiers}) k) x
            JOIN application a ON a.id = x.app_id""")
        step("documents (temp)", """
            CREATE TEMP TABLE doc_stage AS
            SELECT d.id AS dossier_id, p AS position, 'doc-' || (p + 1) AS document_id,
                   (ARRAY['SR', 'WO', 'ER', 'CLAIMS'])[1 + (d.k + p) % 4] AS type,
                   encode(sha256(convert_to('bench-blob:' || d.id || ':' || p, 'UTF8')), 'hex') AS sha256,
                   (40000 + floor(random() * 3000000))::bigint AS size,
                   (ARRAY['en', 'en', 'en', 'ja', 'zh', 'ko', 'th', 'vi', 'id'])[1 + floor(random() * 9)::int]
                     AS language,
                   d.issued + 3 * p AS issued_on
            FROM dos_stage d, generate_series(0, d.ndocs - 1) p""")
        step("citations (temp)", """
            CREATE TEMP TABLE cit_stage AS
            SELECT d.id AS dossier_id, q,
                   'US ' || y || '/' || lpad(n::text, 7, '0') || ' A1' AS cited,
                   'US:' || y || lpad(n::text, 7, '0') AS cited_key,
                   (ARRAY['X', 'Y', 'A', 'A', 'Y'])[1 + floor(random() * 5)::int] AS category,
                   jsonb_build_array(1, 2 + q) AS claims
            FROM dos_stage d, generate_series(1, d.ncit) q,
                 LATERAL (SELECT 2000 + (d.k + q) % 20 AS y, floor(random() * 300000)::int AS n) r""")
        step("manifests (temp)", """
            CREATE TEMP TABLE man_stage AS
            SELECT d.*, jsonb_build_object(
                     'office', d.office_code,
                     'application', jsonb_build_object(
                        'number', d.number, 'filing_date', d.filing_date, 'title', d.title, 'ipc', d.ipc,
                        'priorities', '[]'::jsonb, 'pct', d.pct_number,
                        'publication', CASE WHEN d.publication_number IS NULL THEN NULL ELSE
                            jsonb_build_object('number', d.publication_number, 'date', d.publication_date) END),
                     'documents', g.docs, 'citations', COALESCE(ci.cits, '[]'::jsonb),
                     'signed_at', to_char(d.issued + time '08:00', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')) AS manifest
            FROM dos_stage d
            JOIN (SELECT dossier_id, jsonb_agg(jsonb_build_object(
                        'id', document_id, 'type', type, 'title', type || ' ' || document_id, 'language', language,
                        'issued_on', issued_on, 'media_type', 'application/pdf', 'sha256', sha256, 'size', size)
                        ORDER BY position) AS docs
                  FROM doc_stage GROUP BY dossier_id) g ON g.dossier_id = d.id
            LEFT JOIN (SELECT dossier_id, jsonb_agg(jsonb_build_object('cited', cited, 'category', category,
                                                                       'claims', claims) ORDER BY q) AS cits
                       FROM cit_stage GROUP BY dossier_id) ci ON ci.dossier_id = d.id""")
        step("dossier", """
            INSERT INTO dossier (id, office_code, application_id, manifest_sha256, signature_sha256, jws, manifest,
                                 kid, alg, signed_at, received_at, depositor_client_id)
            SELECT id, office_code, app_id, encode(sha256(convert_to(manifest::text, 'UTF8')), 'hex'),
                   encode(sha256(convert_to(sig, 'UTF8')), 'hex'), jws || '.' || sig, manifest,
                   lower(office_code) || '-signing-2023', 'ES256', signed_at, signed_at + interval '7 minutes',
                   'client-' || lower(office_code) || '-depositor'
            FROM (SELECT m.*, (m.issued + time '08:00') AT TIME ZONE 'UTC' AS signed_at,
                         'eyJhbGciOiJFUzI1NiIsImtpZCI6IjIwMjMifQ.'
                         || rtrim(translate(encode(convert_to(m.manifest::text, 'UTF8'), 'base64'),
                                            E'+/\\n', '-_'), '=') AS jws,
                         translate(encode(sha512(convert_to(m.id, 'UTF8')), 'base64'), E'+/=\\n', '-_') AS sig
                  FROM man_stage m) x
            ORDER BY id""")
        step("blob", """
            INSERT INTO blob (sha256, key, size, created_at, retained_until, verified_at, integrity)
            SELECT sha256, 'blobs/' || substr(sha256, 1, 2) || '/' || sha256, size,
                   (issued_on + time '08:05') AT TIME ZONE 'UTC',
                   (issued_on + interval '20 years') AT TIME ZONE 'UTC', NULL, 'unverified'
            FROM doc_stage""")
        step("document", """
            INSERT INTO document (dossier_id, document_id, position, type, title, language, issued_on, media_type,
                                  sha256, size, allowable_claims, translation_of)
            SELECT dossier_id, document_id, position, type, type || ' ' || document_id, language, issued_on,
                   'application/pdf', sha256, size,
                   CASE WHEN type IN ('WO', 'ER') THEN '[1, 2, 3]'::jsonb END, NULL
            FROM doc_stage ORDER BY dossier_id, position""")
        step("citation", """
            INSERT INTO citation (dossier_id, cited, cited_key, category, claims)
            SELECT dossier_id, cited, cited_key, category, claims FROM cit_stage ORDER BY dossier_id, q""")
        step("receipt", """
            INSERT INTO receipt (dossier_id, jws, kid, received_at)
            SELECT id, 'eyJhbGciOiJFZERTQSIsImtpZCI6ImV4Y2hhbmdlLTIwMjMifQ.'
                       || translate(encode(convert_to('{"dossier_id":"' || id || '","manifest_sha256":"'
                                                      || manifest_sha256 || '"}', 'UTF8'), 'base64'),
                                    E'+/=\\n', '-_')
                       || '.' || substr(signature_sha256, 1, 43),
                   'exchange-2023', received_at
            FROM dossier""")
        t = time.perf_counter()
        rows, members = _agreements(rng, 50)
        with c.cursor() as cur:
            cur.executemany("""INSERT INTO agreement (id, name, program, document_types, valid_from, valid_until,
                                                      status, require_corresponding, share_unpublished,
                                                      created_at, updated_at)
                               VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, now(), now())""", rows)
            cur.executemany("INSERT INTO agreement_member (agreement_id, office_code) VALUES (%s, %s)", members)
        steps.append(("agreements", time.perf_counter() - t))
        say(f"  {'agreements':<34} {steps[-1][1]:7.2f} s")
        # ASPEC requests: a later member (SO) relies on the first filing (FO) of its family.
        step("aspec_request", """
            INSERT INTO aspec_request (id, route, so_office, so_application_id, fo_office, fo_application_id,
                                       fo_number, relied_documents, claim_correspondence, status, reasons, basis,
                                       created_by, created_at, decided_at, withdrawn_at)
            SELECT md5('bench-aspec-' || so.id)::uuid::text,
                   CASE WHEN so.pct_key IS NOT NULL THEN 'PCT-ASPEC' ELSE 'ASPEC' END,
                   so.office_code, so.id, fo.office_code, fo.id, fo.number,
                   jsonb_build_array(jsonb_build_object('dossier_id', md5('fo-' || fo.id)::uuid::text,
                                                        'document_id', 'doc-1')),
                   NULL, st,
                   CASE st WHEN 'rejected' THEN '["NOT_PARTICIPANT"]'::jsonb ELSE '[]'::jsonb END,
                   CASE WHEN so.pct_key IS NOT NULL THEN 'pct' ELSE 'priority' END,
                   'client-' || lower(so.office_code) || '-examiner',
                   (so.filing_date + time '10:00') AT TIME ZONE 'UTC',
                   (so.filing_date + time '10:00') AT TIME ZONE 'UTC',
                   CASE WHEN st = 'withdrawn'
                        THEN (so.filing_date + time '10:00' + interval '90 days') AT TIME ZONE 'UTC' END
            FROM (SELECT a.id, a.first_id,
                         CASE WHEN r < 0.7 THEN 'accepted' WHEN r < 0.9 THEN 'rejected' ELSE 'withdrawn' END AS st
                  FROM (SELECT id, first_id, random() AS r, random() AS pick FROM app_stage WHERE m > 0) a
                  WHERE pick < 0.05) x
            JOIN application so ON so.id = x.id JOIN application fo ON fo.id = x.first_id""")
        step("sequences", """
            SELECT setval(pg_get_serial_sequence('application', 'id'), (SELECT max(id) FROM application))""")
        c.execute("SET session_replication_role = DEFAULT")
        t = time.perf_counter()
        for table in ("office", "application", "priority_claim", "correspondence_key", "dossier", "document",
                      "blob", "citation", "receipt", "agreement", "agreement_member", "aspec_request"):
            c.execute(f"VACUUM (ANALYZE) {table}")
        vacuum_s = time.perf_counter() - t
        say(f"  {'VACUUM (ANALYZE)':<34} {vacuum_s:7.2f} s")
        counts = {}
        for table in ("application", "priority_claim", "correspondence_key", "dossier", "document", "blob",
                      "citation", "receipt", "agreement", "agreement_member", "aspec_request"):
            counts[table] = c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        counts["families"] = c.execute("SELECT count(*) FROM fam").fetchone()[0]
        counts["pct_families"] = c.execute("SELECT count(*) FROM fam WHERE pct").fetchone()[0]
        counts["published"] = c.execute(
            "SELECT count(*) FROM application WHERE publication_date IS NOT NULL").fetchone()[0]
        counts["db_mb"] = round(c.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1e6)
        checked, bad = _check_keys(c, rng)
    return {"steps": steps, "vacuum_analyze_s": vacuum_s, "counts": counts, "fk_triggers_skipped": fk_skipped,
            "keys_checked": checked, "key_mismatches": bad}


def _check_keys(c: psycopg.Connection, rng: random.Random, sample: int = 2000) -> tuple[int, list]:
    """The generated keys against ``numbers.normalise`` on a random sample."""
    n = c.execute("SELECT max(id) FROM application").fetchone()[0]
    ids = rng.sample(range(1, n + 1), min(sample, n))
    rows = c.execute("""SELECT a.office_code, a.number, a.number_key, a.pct_number, a.pct_key,
                               a.publication_number, a.publication_key, p.office, p.number, p.number_key
                        FROM application a LEFT JOIN priority_claim p ON p.application_id = a.id
                        WHERE a.id = ANY(%s)""", (ids,)).fetchall()
    checked, bad = 0, []
    for office, num, key, pct, pct_key, pub, pub_key, p_office, p_num, p_key in rows:
        pairs = [(office, num, key), (office, pct, pct_key), (office, pub, pub_key), (p_office, p_num, p_key)]
        for o, text, expected in pairs:
            if text is None:
                continue
            checked += 1
            got = numbers.normalise(o, text)
            if got != expected:
                bad.append((o, text, expected, got))
    return checked, bad[:10]


# --- measurement --------------------------------------------------------------------------------

def percentiles(ns: list[int]) -> dict:
    v = sorted(ns)

    def rank(q: float) -> float:
        return v[max(0, min(len(v) - 1, math.ceil(q * len(v)) - 1))] / 1e6

    return {"n": len(v), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": v[-1] / 1e6,
            "mean": sum(v) / len(v) / 1e6}


class Probe:
    """Counts the statements sent and the time spent inside ``cursor.execute`` (round trip + server
    + result transfer); optionally captures the statements with their parameters."""

    def __init__(self, engine: sa.Engine) -> None:
        self.n = 0
        self.exec_ns = 0
        self.objects = 0
        self._t0 = 0
        self.capture: list[tuple[str, object]] | None = None
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(Base, "load", self._load, propagate=True)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.n += 1
        if self.capture is not None:
            self.capture.append((statement, parameters))
        self._t0 = time.perf_counter_ns()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.exec_ns += time.perf_counter_ns() - self._t0

    def _load(self, target, context) -> None:
        self.objects += 1

    def mark(self) -> tuple[int, int, int]:
        return self.n, self.exec_ns, self.objects


class Series:
    def __init__(self) -> None:
        self.ns: list[int] = []
        self.statements = self.exec_ns = self.objects = 0

    def add(self, ns: int, m0: tuple[int, int, int], m1: tuple[int, int, int]) -> None:
        self.ns.append(ns)
        self.statements += m1[0] - m0[0]
        self.exec_ns += m1[1] - m0[1]
        self.objects += m1[2] - m0[2]

    def summary(self) -> dict:
        n = len(self.ns)
        return percentiles(self.ns) | {"statements": round(self.statements / n, 2),
                                       "in_execute_ms": round(self.exec_ns / n / 1e6, 4),
                                       "orm_objects": round(self.objects / n, 1)}


def round_trip(url: str, n_samples: int) -> dict:
    """``SELECT 1`` through psycopg alone: the floor any statement pays on this machine."""
    with psycopg.connect(url) as c:
        for _ in range(WARMUP):
            c.execute("SELECT 1").fetchone()
        ns = []
        for _ in range(n_samples):
            t0 = time.perf_counter_ns()
            c.execute("SELECT 1").fetchone()
            ns.append(time.perf_counter_ns() - t0)
    return percentiles(ns) | {"statements": 1.0, "in_execute_ms": None, "orm_objects": 0.0}


def measure(url: str, n_samples: int, budget_s: float, seed: int) -> tuple[dict, dict, dict]:
    engine = make_engine(url)
    probe = Probe(engine)
    sf = make_session_factory(engine)
    rng = random.Random(seed + 1)
    results: dict[str, dict] = {"round trip": round_trip(url, n_samples)}
    extra: dict = {}
    try:
        with sf() as s:
            max_app = s.scalar(select(sa.func.max(Application.id)))
            dossiers = [tuple(r) for r in s.execute(sa.text("SELECT id, office_code FROM dossier"))]
            s.rollback()

            def run(name: str, fn, pick) -> None:
                """WARMUP calls, then up to n_samples timed calls within the time budget."""
                for _ in range(WARMUP):
                    s.expunge_all()
                    fn(pick())
                gc.collect()
                series, deadline = Series(), time.monotonic() + budget_s
                for _ in range(n_samples):
                    args = pick()
                    s.expunge_all()
                    m0 = probe.mark()
                    t0 = time.perf_counter_ns()
                    fn(args)
                    t1 = time.perf_counter_ns()
                    series.add(t1 - t0, m0, probe.mark())
                    if time.monotonic() > deadline:
                        break
                results[name] = series.summary()

            # 1. baseline: a bare primary-key SELECT through the ORM.
            run("baseline", lambda i: s.get(Application, i), lambda: rng.randint(1, max_app))

            # 2. family look-up.
            sizes: list[int] = []
            run("family", lambda i: sizes.append(len(repository.family(s, i))), lambda: rng.randint(1, max_app))
            extra["family_size_mean"] = round(sum(sizes[WARMUP:]) / max(1, len(sizes) - WARMUP), 3)
            extra["family_size_max"] = max(sizes)

            # 3 + 4. the decision alone (dossier loaded beforehand, fresh Gate) and load + decision.
            def pick_decision() -> tuple[str, str]:
                did, office = rng.choice(dossiers)
                return did, rng.choice([o for o in OFFICES if o != office])

            for _ in range(WARMUP):
                did, viewer = pick_decision()
                s.expunge_all()
                Gate(s, Scope.office(viewer), "bench", None).decide(repository.dossier(s, did), audit_it=False)
            gc.collect()
            dec, both, outcomes = Series(), Series(), Counter()
            deadline = time.monotonic() + budget_s
            for _ in range(n_samples):
                did, viewer = pick_decision()
                s.expunge_all()
                m0 = probe.mark()
                t0 = time.perf_counter_ns()
                d = repository.dossier(s, did)
                t1 = time.perf_counter_ns()
                m1 = probe.mark()
                decision = Gate(s, Scope.office(viewer), "bench", None).decide(d, audit_it=False)
                t2 = time.perf_counter_ns()
                m2 = probe.mark()
                dec.add(t2 - t1, m1, m2)
                both.add(t2 - t0, m0, m2)
                outcomes[decision.rule.split(":")[0] if decision.visible else "deny"] += 1
                if time.monotonic() > deadline:
                    break
            results["decision"] = dec.summary()
            results["load+decision"] = both.summary()
            extra["decision_outcomes"] = {k: round(v / len(dec.ns), 4) for k, v in sorted(outcomes.items())}

            # Where a decision's time goes: the steps of Gate.decide, timed one by one (a diagnostic,
            # with the very functions dossiers/access.py uses).
            parts: dict[str, list[int]] = {k: [] for k in DECISION_PARTS}
            for _ in range(min(500, n_samples)):
                did, viewer = pick_decision()
                s.expunge_all()
                d = repository.dossier(s, did)
                t0 = time.perf_counter_ns()
                corr, reqs, facts = repository.decision_facts(s, viewer, d.office_code, d.application_id)
                t1 = time.perf_counter_ns()
                policy.decide(policy.ViewerFacts(office=viewer, corresponding=corr, aspec_requests=tuple(reqs)),
                              policy.dossier_facts(d), facts, utcnow())
                t2 = time.perf_counter_ns()
                for k, a, b in zip(DECISION_PARTS, (t0, t1), (t1, t2)):
                    parts[k].append(b - a)
            extra["decision_parts_ms"] = {k: {q: round(v, 4) for q, v in percentiles(ns).items() if q != "n"}
                                          for k, ns in parts.items()}

            # The statements of one family look-up, one dossier load and one decision, for EXPLAIN.
            captured: dict[str, list] = {}
            first_filing = s.scalar(sa.text(
                "SELECT p.number_key FROM priority_claim p ORDER BY p.id LIMIT 1 OFFSET :o"),
                {"o": rng.randint(0, 1000)})
            member = s.scalar(select(Application.id).where(Application.number_key == first_filing).limit(1))
            did, office = rng.choice(dossiers)
            viewer = next(o for o in OFFICES if o != office)
            holder: dict = {}
            for label, call in (
                    ("family", lambda: repository.family(s, member)),
                    ("dossier load", lambda: holder.update(d=repository.dossier(s, did))),
                    ("decision",
                     lambda: Gate(s, Scope.office(viewer), "bench", None).decide(holder["d"], audit_it=False))):
                if label != "decision":
                    s.expunge_all()
                probe.capture = []
                call()
                captured[label] = probe.capture
                probe.capture = None
            s.rollback()
        return results, extra, captured
    finally:
        engine.dispose()


# --- EXPLAIN ------------------------------------------------------------------------------------

BIG_TABLE = 10_000  # rows: below this a sequential scan is the right plan
SUGGESTIONS = [
    # (table, column a plan filters on instead of using an index, the index that would serve it)
    ("aspec_request", "fo_application_id",
     'Index("ix_aspec_request_so_status_fo_app", "so_office", "status", "fo_application_id")'),
    ("aspec_request", "status",
     'Index("ix_aspec_request_so_status_fo_app", "so_office", "status", "fo_application_id")'),
    ("correspondence_key", "key", 'Index("ix_correspondence_key_key_application_id", "key", "application_id")'),
    ("correspondence_key", "application_id",
     'Index("ix_correspondence_key_key_application_id", "key", "application_id")'),
    ("application", "office_code", 'Index("ix_application_office_code_id", "office_code", "id")'),
    ("agreement_member", "office_code",
     'Index("ix_agreement_member_office_code_agreement_id", "office_code", "agreement_id")'),
    ("document", "dossier_id", 'Index("ix_document_dossier_id", "dossier_id")'),
    ("priority_claim", "application_id", 'Index("ix_priority_claim_application_id", "application_id")'),
]


def explain(url: str, captured: dict[str, list], show_all: bool, say) -> tuple[list[dict], dict[str, float]]:
    """EXPLAIN (ANALYZE, BUFFERS) every captured statement; flag a sequential scan or a filter that
    throws rows away on a large table, or a statement over 0.5 ms, and name an index for it."""
    report, server_ms = [], {}
    with psycopg.connect(url, autocommit=True) as c:
        sizes = dict(c.execute("SELECT relname, reltuples::bigint FROM pg_class WHERE relkind = 'r' "
                               "AND relnamespace = 'public'::regnamespace").fetchall())
        for label, statements in captured.items():
            server_ms[label] = 0.0
            for sql, params in statements:
                sql_one = " ".join(sql.split())
                try:
                    plan = [r[0] for r in c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params or None)]
                except psycopg.Error as exc:
                    say(f"  EXPLAIN failed for {sql_one[:100]}: {exc}")
                    continue
                text = "\n".join(plan)
                ms = float(re.search(r"Execution Time: ([\d.]+) ms", text).group(1))
                server_ms[label] += ms
                seq = sorted({t for t in re.findall(r"Seq Scan on (\w+)", text) if sizes.get(t, 0) >= BIG_TABLE})
                removed = sum(int(x) for x in re.findall(r"Rows Removed by Filter: (\d+)", text))
                tables = set(re.findall(r"(?:FROM|JOIN) (\w+)", sql_one))
                flagged = bool(seq) or (removed > 100 and any(sizes.get(t, 0) >= BIG_TABLE for t in tables)) \
                    or ms > 0.5
                hints = sorted({idx for table, column, idx in SUGGESTIONS
                                if flagged and table in tables and re.search(rf"Filter: .*\b{column}\b", text)})
                report.append({"path": label, "sql": sql_one[:160], "exec_ms": ms, "rows_removed_by_filter": removed,
                               "seq_scans_big": seq, "flagged": flagged, "suggest": hints})
                nodes = [m.group(1).strip() for line in plan if (m := re.match(r"\s*(?:->\s*)?([A-Z][\w ]+? on \w+"
                                                                                r"(?: using \w+)?)", line))]
                say(f"  [{label}] {ms:6.3f} ms {'FLAG ' if flagged else ''}{sql_one[:70]}...")
                say(f"      {'; '.join(nodes) or plan[0].split('  (')[0]}")
                if show_all or flagged:
                    for line in plan:
                        say("      | " + line)
                for h in hints:
                    say(f"      -> would help: {h}")
    return report, server_ms


# --- main ---------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 applications, 20,000 dossiers")
    ap.add_argument("--explain", action="store_true", help="EXPLAIN (with plans) even when every goal is met")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=20261122)
    args = ap.parse_args()
    n_apps, n_dossiers = (100_000, 20_000) if args.quick else (1_000_000, 200_000)
    budget = 60.0 if args.quick else 120.0  # seconds per measured phase

    def say(msg: str) -> None:
        print(msg, flush=True)

    name = f"bench_policy_{os.getpid()}"
    url = f"{PG_SERVER}/{name}"
    admin = psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        t = time.perf_counter()
        migrations.upgrade(url)
        say(f"mode {'quick' if args.quick else 'full'}: database {name}, migrations {time.perf_counter() - t:.1f} s")
        say("generation:")
        t = time.perf_counter()
        gen = generate(url, n_apps, n_dossiers, args.seed, say)
        gen_s = sum(s for _, s in gen["steps"])
        wall_s = time.perf_counter() - t
        counts = gen["counts"]
        say(f"generation {gen_s:.1f} s + VACUUM (ANALYZE) {gen['vacuum_analyze_s']:.1f} s "
            f"(wall {wall_s:.1f} s; FK triggers skipped while loading: {gen['fk_triggers_skipped']}); "
            f"database {counts['db_mb']} MB")
        say("rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items() if k != "db_mb"))
        say(f"keys checked against numbers.normalise: {gen['keys_checked']}, mismatches "
            f"{len(gen['key_mismatches'])}" + "".join(f"\n  {m}" for m in gen["key_mismatches"]))

        load = os.getloadavg()
        say(f"measuring: {args.samples} samples each after {WARMUP} warm-up calls, at most {budget:.0f} s a phase; "
            f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        results, extra, captured = measure(url, args.samples, budget, args.seed)
        base = results["baseline"]["p99"]
        say("")
        say(f"{'measure':<14} {'N':>5} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} {'p99/base':>8} "
            f"{'stmts':>5} {'exec ms':>7} {'objs':>5}  {'goal':<12} result")
        verdicts = {}
        for key in ("round trip", "baseline", "family", "decision", "load+decision"):
            r = results[key]
            r["p99_over_baseline"] = round(r["p99"] / base, 2)
            goal = GOALS_MS.get(key)
            verdict = "" if goal is None else ("PASS" if r["p99"] < goal else "MISS")
            if goal is not None:
                verdicts[key] = verdict
            ex = "-" if r["in_execute_ms"] is None else f"{r['in_execute_ms']:.3f}"
            say(f"{key:<14} {r['n']:>5} {r['p50']:>7.3f} {r['p95']:>7.3f} {r['p99']:>7.3f} {r['max']:>7.2f} "
                f"{r['p99_over_baseline']:>8.2f} {r['statements']:>5} {ex:>7} {r['orm_objects']:>5}  "
                f"{f'p99 < {goal:g} ms' if goal else '-':<12} {verdict}")
        say("(round trip: SELECT 1 through psycopg alone; stmts: statements a call; exec ms: mean time inside "
            "cursor.execute, i.e. round trips + server; objs: ORM objects loaded)")
        say(f"mean family size {extra['family_size_mean']} (max {extra['family_size_max']}); decisions: "
            + ", ".join(f"{k} {v:.1%}" for k, v in extra["decision_outcomes"].items()))
        say("decision, step by step (Gate.decide's steps timed separately): " + "; ".join(
            f"{k} p50 {v['p50']:.3f} / p99 {v['p99']:.3f} ms" for k, v in extra["decision_parts_ms"].items()))

        explained, server_ms = [], {}
        if args.explain or "MISS" in verdicts.values():
            say("")
            say("EXPLAIN (ANALYZE, BUFFERS) of the statements of one family look-up, one dossier load and one "
                "decision:")
            explained, server_ms = explain(url, captured, args.explain, say)
            say("")
            for key, rest in (("family", ""), ("decision", "; the policy")):
                r = results[key]
                say(f"{key}: p50 {r['p50']:.3f} ms = {r['in_execute_ms']:.3f} ms in cursor.execute "
                    f"({r['statements']} statements; server execution of one call ~{server_ms.get(key, 0):.3f} ms, "
                    f"round trip p50 {results['round trip']['p50']:.3f} ms each) + "
                    f"~{max(0.0, r['p50'] - r['in_execute_ms']):.3f} ms in Python (SQLAlchemy building the "
                    f"statements and {r['orm_objects']} ORM objects{rest})")
            wanted = sorted({h for e in explained for h in e["suggest"]})
            say("indexes that would help: " + ("; ".join(wanted) if wanted else
                "none - no statement is index-bound (no flagged plan); the time is round trips and ORM work"))
        say(json.dumps({
            "bench": "policy", "mode": "quick" if args.quick else "full",
            "applications": n_apps, "dossiers": n_dossiers, "generation_s": round(gen_s, 2),
            "vacuum_analyze_s": round(gen["vacuum_analyze_s"], 2),
            "generation_steps_s": {k: round(v, 2) for k, v in gen["steps"]}, "rows": counts,
            "key_mismatches": len(gen["key_mismatches"]), "load_average": [round(x, 2) for x in load],
            "results_ms": {k: {kk: (round(vv, 4) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                           for k, v in results.items()},
            "goals_p99_ms": GOALS_MS, "verdicts": verdicts, **extra,
            "explain_server_ms": {k: round(v, 3) for k, v in server_ms.items()},
            "explain": [{k: v for k, v in e.items() if k != "sql"} | {"sql": e["sql"][:80]} for e in explained],
        }, ensure_ascii=False))
    finally:
        try:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.close()


if __name__ == "__main__":
    main()
