"""Creates delegated grants on a running tenure server over HTTP and writes each
grant's access and refresh token, one pair per line, to a file.

    python3 grants.py URL ZONE ADMIN_TOKEN CLIENT_ID FIRST COUNT OUT

The admin token is read from the environment variable named by ADMIN_TOKEN (so it
never appears on a command line). Users are numbered FIRST .. FIRST+COUNT-1.
Four connections with keep-alive, one thread each.
"""

import http.client
import json
import os
import sys
import threading
import urllib.parse


def create(url, zone, token, client, users, out, lock, failures):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    lines = []
    for user in users:
        body = json.dumps(
            {
                "client_id": client,
                "user_id": f"load-user-{user}",
                "resource_id": "load-resource",
                "scopes": ["read", "write"],
            }
        )
        conn.request("POST", f"/zones/{zone}/delegated-grants", body, headers)
        response = conn.getresponse()
        data = response.read()
        if response.status != 201:
            failures.append(f"{response.status} {data[:200]!r}")
            return
        created = json.loads(data)
        lines.append(f"{created['access_token']} {created['refresh_token']}\n")
    with lock:
        out.writelines(lines)


def main():
    url, zone, token_var, client, first, count, path = sys.argv[1:8]
    token = os.environ[token_var]
    first, count = int(first), int(count)
    lock, failures = threading.Lock(), []
    with open(path, "w") as out:
        threads = [
            threading.Thread(
                target=create,
                args=(url, zone, token, client, range(first + i, first + count, 4), out, lock, failures),
            )
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if failures:
        sys.exit(f"creating grants failed: {failures[0]}")


if __name__ == "__main__":
    main()
