"""A private CA and the certificates the compose deployment serves HTTPS with.

    python infra/tls/make_certs.py --gateway-name hubs.county.example [--out infra/tls]

writes ca.pem (give it to the hubs, the planners' command line as PACKLOOP_CA_FILE, and
Prometheus), gateway.pem/.key (names: gateway, localhost and every --gateway-name) and
planner.pem/.key (names: planner, localhost). The keys are written for the owner only:
the containers run as uid 10001, so `sudo chown 10001 infra/tls/*.key` before
`docker compose up`. ca.key signs new certificates: keep it offline. A certificate from
your own CA works the same (same file names); the gateway's must name "gateway" for
Prometheus' scrapes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path

DAYS = 825
KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(out: Path) -> None:
    if (out / "ca.pem").exists():
        return  # reuse it: the hubs already trust it
    openssl("req", "-x509", *KEY, "-keyout", str(out / "ca.key"), "-out", str(out / "ca.pem"),
            "-days", str(DAYS * 4), "-subj", "/CN=packloop deployment CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    os.chmod(out / "ca.key", 0o600)


def issue(out: Path, name: str, hosts: list[str]) -> None:
    names = ",".join(f"IP:{h}" if h.replace(".", "").isdigit() else f"DNS:{h}" for h in hosts)
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "req.csr", Path(tmp) / "req.ext"
        ext.write_text(f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
                       "authorityKeyIdentifier=keyid\n", "utf-8")
        openssl("req", *KEY, "-keyout", str(out / f"{name}.key"), "-out", str(csr),
                "-subj", f"/CN={hosts[0]}")
        openssl("x509", "-req", "-in", str(csr), "-CA", str(out / "ca.pem"),
                "-CAkey", str(out / "ca.key"), "-CAcreateserial", "-out",
                str(out / f"{name}.pem"), "-days", str(DAYS), "-extfile", str(ext))
    os.chmod(out / f"{name}.key", 0o600)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-name", action="append", default=[],
                        help="a name (or IP) hubs use to reach the gateway; repeatable")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    make_ca(args.out)
    issue(args.out, "gateway", ["gateway", *args.gateway_name, "localhost", "127.0.0.1"])
    issue(args.out, "planner", ["planner", "localhost", "127.0.0.1"])
    print(f"wrote ca.pem, gateway.pem/.key, planner.pem/.key in {args.out}")


if __name__ == "__main__":
    main()
