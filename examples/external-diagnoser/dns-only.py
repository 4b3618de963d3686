#!/usr/bin/env python3
"""An external diagnoser for `maillab verify --diagnoser` that only checks DNS.

It reads the customer's settings JSON (path in argv[-1] or $MAILLAB_SETTINGS),
asks the configured resolver for each server's A record with dig, and answers
DNS_NXDOMAIN, DNS_SERVFAIL, DNS_TIMEOUT or DNS_RESOLVER_UNREACHABLE, or HEALTHY
when every name resolves. It shows how a real tool plugs into verify: it passes
the DNS scenarios and fails the rest, with its evidence in the report.
"""
import json, os, subprocess, sys

path = sys.argv[-1] if len(sys.argv) > 1 else os.environ.get("MAILLAB_SETTINGS", "")
with open(path) as f:
    settings = json.load(f)
resolver = settings.get("resolver", "")
host, _, port = resolver.rpartition(":")
for name, svc in sorted(settings["services"].items()):
    cmd = ["dig", "+time=1", "+tries=1", "+noall", "+comments", "+answer", svc["host"], "A"]
    if resolver:
        cmd[1:1] = ["@" + host.strip("[]"), "-p", port]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    code = None
    if "status: NXDOMAIN" in out:
        code = "DNS_NXDOMAIN"
    elif "status: SERVFAIL" in out:
        code = "DNS_SERVFAIL"
    elif "status: REFUSED" in out or "connection refused" in out:
        code = "DNS_RESOLVER_UNREACHABLE"
    elif "timed out" in out or "no servers could be reached" in out:
        code = "DNS_TIMEOUT"
    if code:
        print(json.dumps({"root_cause": code, "summary": f"{name}: {svc['host']} does not resolve",
                          "services": [{"service": name, "steps": [{"step": "dns", "ok": False, "code": code,
                                                                    "evidence": out.strip()[:300]}]}]}))
        sys.exit(1)
print(json.dumps({"root_cause": "HEALTHY", "summary": "every server name resolves"}))
