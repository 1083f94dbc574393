#!/usr/bin/env python3
"""A stand-in for Harbor, for exactly the calls Harbor Satellite's Ground Control makes.

No Harbor can run here, so ground-control's `registry.kind = harbor` is tested against this.
It follows Harbor's published API (goharbor/harbor api/v2.0/swagger.yaml: the definitions
ProjectReq, RobotCreate, RobotCreated, Robot, RobotSec, RobotPermission, Access, Errors) and
the server-side rules of src/server/v2.0/handler/robot.go (robot name pattern, duration -1 or
positive, level system or project, non-empty permissions and access, `robot$` name prefix,
expiry = creation + duration days, PATCH with an empty secret makes one up, a given one must
have 8-128 characters with upper, lower and digit). Every request body is validated against
the swagger schema (unknown members refused too, so a typo in ground-control shows), and every
call is appended to --log as one JSON line {method, path, body}.

  HEAD   /api/v2.0/projects?project_name=N    200 / 404
  POST   /api/v2.0/projects                   201 (ProjectReq), 409 exists
  GET    /api/v2.0/robots?q=name=N            [Robot]
  POST   /api/v2.0/robots                     201 RobotCreated (RobotCreate)
  GET    /api/v2.0/robots/{id}                Robot
  PUT    /api/v2.0/robots/{id}                200 (Robot: name and level unchanged)
  PATCH  /api/v2.0/robots/{id}                200 RobotSec (RobotSec)
  DELETE /api/v2.0/robots/{id}                200
  /v2/...  Harbor's registry: Basic auth as the admin (everything) or a robot (pull on the
           projects its permissions name, while enabled and unexpired), then proxied to the
           real registry given with --upstream (Debian's docker-registry, no auth of its own).
  POST   /standin/fail?count=N                the next N /api/v2.0 calls answer 500 (tests)
  POST   /standin/age?days=N                  every robot was created N days earlier (tests)

usage: harbor_standin.py --listen 127.0.0.1:PORT --admin USER:PASS --upstream http://HOST:PORT
                         --log FILE [--project NAME ...]
"""
import argparse
import base64
import http.client
import json
import re
import secrets
import string
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jsonschema

# goharbor/harbor api/v2.0/swagger.yaml, definitions (Swagger 2.0 schemas, x-nullable as null).
ACCESS = {"type": "object", "additionalProperties": False, "properties": {
    "resource": {"type": "string"}, "action": {"type": "string"}, "effect": {"type": "string"}}}
PERMISSION = {"type": "object", "additionalProperties": False, "properties": {
    "kind": {"type": "string"}, "namespace": {"type": "string"}, "access": {"type": "array", "items": ACCESS}}}
SCHEMAS = {
    "ProjectReq": {"type": "object", "additionalProperties": False, "properties": {
        "project_name": {"type": "string", "maxLength": 255},
        "public": {"type": ["boolean", "null"]},
        "metadata": {"type": "object"},
        "cve_allowlist": {"type": "object"},
        "storage_limit": {"type": ["integer", "null"]},
        "registry_id": {"type": ["integer", "null"]}}},
    "RobotCreate": {"type": "object", "additionalProperties": False, "properties": {
        "name": {"type": "string"}, "description": {"type": "string"}, "secret": {"type": "string"},
        "level": {"type": "string"}, "disable": {"type": "boolean"}, "duration": {"type": "integer"},
        "permissions": {"type": "array", "items": PERMISSION}}},
    "Robot": {"type": "object", "additionalProperties": False, "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "description": {"type": "string"},
        "secret": {"type": "string"}, "level": {"type": "string"},
        "duration": {"type": ["integer", "null"]}, "editable": {"type": "boolean"},
        "disable": {"type": "boolean"}, "expires_at": {"type": "integer"},
        "permissions": {"type": "array", "items": PERMISSION},
        "creator_type": {"type": "string"}, "creator_ref": {"type": "integer"},
        "creation_time": {"type": "string"}, "update_time": {"type": "string"}}},
    "RobotSec": {"type": "object", "additionalProperties": False, "properties": {"secret": {"type": "string"}}},
}
ROBOT_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
# src/common/rbac/project: the project-scope policies a robot may hold (the part we use).
PROJECT_POLICIES = {("repository", "pull"), ("repository", "read"), ("repository", "push"),
                    ("artifact", "read"), ("artifact", "list"), ("tag", "list")}


class State:
    def __init__(self, admin, projects):
        self.lock = threading.Lock()
        self.admin = admin
        self.projects = {}
        self.robots = {}
        self.next_id = 1
        self.fail = 0
        for name in projects:
            self.add_project(name, public=False)

    def add_project(self, name, public):
        self.projects[name] = {"project_id": self.next_id, "name": name, "public": public}
        self.next_id += 1


def now_rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def new_secret():
    # Harbor's CreateSec: 32 characters with upper, lower and digits.
    while True:
        s = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
        if any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s):
            return s


def valid_sec(s):
    return 8 <= len(s) <= 128 and any(c.isupper() for c in s) and any(c.islower() for c in s) and any(c.isdigit() for c in s)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "harbor-standin"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing
    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, payload=None, headers=None):
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if payload is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def error(self, status, code, message, headers=None):
        # Harbor's Errors model.
        self.send(status, {"errors": [{"code": code, "message": message}]}, headers)

    def credentials(self):
        value = self.headers.get("Authorization", "")
        if not value.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(value[6:].strip()).decode().partition(":")
        except Exception:
            return None
        return user, password

    def record(self, body):
        entry = {"method": self.command, "path": self.path, "body": body}
        with open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def parsed(self, raw, definition):
        try:
            doc = json.loads(raw or b"null")
        except ValueError as e:
            self.error(400, "BAD_REQUEST", f"invalid JSON: {e}")
            return None, False
        errors = sorted(jsonschema.Draft202012Validator(SCHEMAS[definition]).iter_errors(doc), key=lambda e: list(e.path))
        if errors:
            where = "/".join(str(p) for p in errors[0].path) or "(root)"
            self.error(422, "UNPROCESSABLE_ENTITY", f"{definition}: {where}: {errors[0].message}")
            self.server.invalid += 1
            return None, False
        return doc, True

    # ---- dispatch
    def do_HEAD(self):
        self.dispatch()

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/standin/fail":
            self.body()
            self.server.state.fail = int(urllib.parse.parse_qs(url.query).get("count", ["1"])[0])
            return self.send(200, {})
        if url.path == "/standin/age":
            # Moves every robot's creation N days into the past (its expiry with it).
            self.body()
            days = int(urllib.parse.parse_qs(url.query).get("days", ["0"])[0])
            with self.server.state.lock:
                for robot in self.server.state.robots.values():
                    robot["_created"] -= days * 86400
                    robot["creation_time"] = now_rfc3339(robot["_created"])
                    if robot["expires_at"] != -1:
                        robot["expires_at"] -= days * 86400
            return self.send(200, {})
        if url.path.startswith("/api/v2.0/"):
            return self.api(url)
        if url.path == "/v2" or url.path.startswith("/v2/"):
            return self.registry(url)
        self.body()
        self.error(404, "NOT_FOUND", "not part of the stand-in")

    # ---- /api/v2.0
    def api(self, url):
        raw = self.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        self.record(body)
        st = self.server.state
        if self.credentials() != st.admin:
            return self.error(401, "UNAUTHORIZED", "unauthorized", {"WWW-Authenticate": 'Basic realm="harbor"'})
        with st.lock:
            if st.fail > 0:
                st.fail -= 1
                return self.error(500, "UNKNOWN", "the stand-in was told to fail this call")
            path = url.path[len("/api/v2.0"):]
            query = urllib.parse.parse_qs(url.query)
            if path == "/projects" and self.command == "HEAD":
                name = query.get("project_name", [""])[0]
                return self.send(200 if name in st.projects else 404)
            if path == "/projects" and self.command == "POST":
                doc, ok = self.parsed(raw, "ProjectReq")
                if not ok:
                    return
                name = doc.get("project_name", "")
                if name in st.projects:
                    return self.error(409, "CONFLICT", f"The project named {name} already exists")
                st.add_project(name, bool(doc.get("public")))
                return self.send(201, None, {"Location": f"/api/v2.0/projects/{st.projects[name]['project_id']}"})
            if path == "/robots" and self.command == "GET":
                return self.send(200, [self.view(r) for r in st.robots.values() if self.matches(r, query)])
            if path == "/robots" and self.command == "POST":
                return self.create_robot(raw)
            m = re.fullmatch(r"/robots/(\d+)", path)
            if m:
                robot = st.robots.get(int(m.group(1)))
                if robot is None:
                    return self.error(404, "NOT_FOUND", f"robot {m.group(1)} not found")
                if self.command == "GET":
                    return self.send(200, self.view(robot))
                if self.command == "PUT":
                    return self.update_robot(robot, raw)
                if self.command == "PATCH":
                    doc, ok = self.parsed(raw, "RobotSec")
                    if not ok:
                        return
                    given = doc.get("secret", "")
                    if given:
                        if not valid_sec(given):
                            return self.error(400, "BAD_REQUEST", "the secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number")
                        robot["secret"] = given
                        return self.send(200, {})
                    robot["secret"] = new_secret()
                    return self.send(200, {"secret": robot["secret"]})
                if self.command == "DELETE":
                    del st.robots[robot["id"]]
                    return self.send(200)
        self.error(404, "NOT_FOUND", f"{self.command} {url.path} is not one of the calls the stand-in serves")

    @staticmethod
    def matches(robot, query):
        q = query.get("q", [""])[0]
        if not q:
            return True
        for term in q.split(","):
            key, _, value = term.partition("=")
            if key == "name" and robot["bare_name"] != value.lstrip("~") and robot["name"] != value:
                return False
            if key == "Level" and robot["level"] != value:
                return False
        return True

    @staticmethod
    def view(robot):
        # Harbor never returns a secret after creation.
        return {k: v for k, v in robot.items() if k not in ("secret", "bare_name")}

    def check_rules(self, doc):
        """Harbor's robotAPI.validate; the message on failure, None when good."""
        d = doc.get("duration")
        if d is None or not (d == -1 or 0 < d < 2**31 - 1):
            return f"bad request error duration input: {d}, duration must be either -1(Never) or a positive integer"
        if doc.get("level") not in ("system", "project"):
            return f"bad request error level input: {doc.get('level')}"
        perms = doc.get("permissions") or []
        if not perms:
            return "bad request empty permission"
        for p in perms:
            if not p.get("access"):
                return "bad request empty access"
            if p.get("kind") == "project":
                if p.get("namespace") not in self.server.state.projects:
                    return f"project {p.get('namespace')} not found"
                for a in p["access"]:
                    if (a.get("resource"), a.get("action")) not in PROJECT_POLICIES:
                        return f"bad request permission: {a.get('resource')}:{a.get('action')}"
            elif p.get("kind") != "system":
                return f"bad request permission level: {p.get('kind')}"
        return None

    def create_robot(self, raw):
        st = self.server.state
        doc, ok = self.parsed(raw, "RobotCreate")
        if not ok:
            return
        name = doc.get("name", "")
        if not ROBOT_NAME.match(name):
            return self.error(400, "BAD_REQUEST", "robot name is not in lower case or contains illegal characters")
        problem = self.check_rules(doc)
        if problem:
            self.server.invalid += 1
            return self.error(400, "BAD_REQUEST", problem)
        if any(r["bare_name"] == name for r in st.robots.values()):
            return self.error(409, "CONFLICT", f"robot {name} already exists")
        created = int(time.time())
        rid = st.next_id
        st.next_id += 1
        duration = doc["duration"]
        robot = {
            "id": rid, "name": "robot$" + name, "bare_name": name, "description": doc.get("description", ""),
            "secret": doc.get("secret") or new_secret(), "level": doc["level"], "duration": duration,
            "editable": True, "disable": bool(doc.get("disable")),
            "expires_at": -1 if duration == -1 else created + duration * 86400,
            "permissions": doc["permissions"], "creator_type": "local", "creator_ref": 1,
            "creation_time": now_rfc3339(created), "update_time": now_rfc3339(created), "_created": created,
        }
        st.robots[rid] = robot
        self.send(201, {"id": rid, "name": robot["name"], "secret": robot["secret"],
                        "creation_time": robot["creation_time"], "expires_at": robot["expires_at"]},
                  {"Location": f"/api/v2.0/robots/{rid}"})

    def update_robot(self, robot, raw):
        doc, ok = self.parsed(raw, "Robot")
        if not ok:
            return
        if doc.get("duration") is None:
            doc["duration"] = robot["duration"]
        problem = self.check_rules(doc)
        if problem:
            self.server.invalid += 1
            return self.error(400, "BAD_REQUEST", problem)
        if doc.get("level") != robot["level"] or doc.get("name") != robot["name"]:
            return self.error(400, "BAD_REQUEST", "cannot update the level or name of robot")
        if doc["duration"] != robot["duration"]:
            robot["duration"] = doc["duration"]
            robot["expires_at"] = -1 if doc["duration"] == -1 else robot["_created"] + doc["duration"] * 86400
        robot["description"] = doc.get("description", "")
        robot["disable"] = bool(doc.get("disable"))
        robot["permissions"] = doc["permissions"]
        robot["update_time"] = now_rfc3339(time.time())
        self.send(200)

    # ---- /v2/: Harbor's registry side
    def registry(self, url):
        st = self.server.state
        raw = self.body()
        creds = self.credentials()
        challenge = {"WWW-Authenticate": 'Basic realm="harbor-standin"', "Docker-Distribution-Api-Version": "registry/2.0"}
        oci = lambda code, message: {"errors": [{"code": code, "message": message}]}
        if creds is None:
            return self.send(401, oci("UNAUTHORIZED", "authentication required"), challenge)
        if creds != st.admin:
            with st.lock:
                robot = next((r for r in st.robots.values() if r["name"] == creds[0]), None)
                good = robot is not None and secrets.compare_digest(robot["secret"], creds[1]) and not robot["disable"] \
                    and (robot["expires_at"] == -1 or robot["expires_at"] > time.time())
                if not good:
                    return self.send(401, oci("UNAUTHORIZED", "invalid credentials"), challenge)
                m = re.match(r"^/v2/(.+?)/(manifests|blobs|tags|referrers)/", url.path)
                if m:
                    project = m.group(1).split("/")[0]
                    allowed = any(p["kind"] == "project" and p["namespace"] == project
                                  and {"resource": "repository", "action": "pull"} in
                                  [{"resource": a["resource"], "action": a["action"]} for a in p["access"]]
                                  for p in robot["permissions"])
                    if not allowed or self.command not in ("GET", "HEAD"):
                        return self.send(403, oci("DENIED", f"{creds[0]} may not {self.command} in project {project}"))
                elif url.path not in ("/v2", "/v2/"):
                    return self.send(403, oci("DENIED", "not for robots"))
        self.proxy(raw)

    def proxy(self, raw):
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() not in ("authorization", "content-length", "connection", "transfer-encoding"):
                    conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(raw)))
            conn.endheaders(raw)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as e:
            return self.send(502, {"errors": [{"code": "UNKNOWN", "message": f"registry unreachable: {e}"}]})
        finally:
            conn.close()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "date", "server"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--listen", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--project", action="append", default=[])
    args = ap.parse_args()
    host, _, port = args.listen.rpartition(":")
    user, _, password = args.admin.partition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.state = State((user, password), args.project)
    server.upstream = urllib.parse.urlsplit(args.upstream)
    server.log_path = args.log
    server.invalid = 0
    open(args.log, "w").close()
    print(f"harbor stand-in on {args.listen}", file=sys.stderr, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
