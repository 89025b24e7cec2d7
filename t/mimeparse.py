#!/usr/bin/env python3
"""mimeparse.py FILE [N OUT]: parse FILE, a message smimp-open --mime
wrote, with Python's email package under its strict policy (a defect is
an error: exit 1), and print one line per header, as the parser decoded
it ("H Name: value"), then one line per leaf part ("P N TYPE CTE
DISPOSITION FILENAME LENGTH SHA256"), N from 1.  With N and OUT, write
the decoded bytes of leaf part N to OUT as well.  Used by
t/0520-mime.bats: another implementation's reading of what smimp
writes."""
import email
import email.policy
import hashlib
import sys


def main():
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.strict)
    for name, value in msg.items():
        print("H %s: %s" % (name, str(value)))
    n = 0
    for part in msg.walk():
        if part.is_multipart():
            if part.defects:
                raise SystemExit("defects: %r" % part.defects)
            continue
        n += 1
        data = part.get_payload(decode=True) or b""
        if part.defects:
            raise SystemExit("defects: %r" % part.defects)
        print("P %d %s %s %s %s %d %s" % (
            n, part.get_content_type(),
            part.get("Content-Transfer-Encoding", "-"),
            part.get_content_disposition() or "-",
            part.get_filename() or "-", len(data),
            hashlib.sha256(data).hexdigest()))
        if len(sys.argv) > 3 and int(sys.argv[2]) == n:
            with open(sys.argv[3], "wb") as out:
                out.write(data)
    if msg.defects:
        raise SystemExit("defects: %r" % msg.defects)


main()
