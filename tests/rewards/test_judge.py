"""The optional LLM judge against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mssr.evaluation.benchmarks import GradeItem
from mssr.evaluation.regrade import grade
from mssr.rewards.judge import JudgeError, JudgeReward, LLMJudge, load_prompt


class FakeServer:
    def __init__(self, reply: str = "Reasoning...\nCORRECT", status: int = 200) -> None:
        self.reply, self.status, self.requests = reply, status, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                payload = json.dumps(
                    {"choices": [{"message": {"role": "assistant", "content": outer.reply}}]}
                )
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_prompt_is_versioned_and_filled() -> None:
    assert "{response}" in load_prompt("v1")
    with pytest.raises(ValueError):
        load_prompt("../etc")
    judge = LLMJudge("http://127.0.0.1:9/v1", "m")
    p = judge.prompt("What is x?", "x is 4", "4", ["3", "4"])
    assert "What is x?" in p and "x is 4" in p and "(B) 4" in p


@pytest.mark.parametrize(
    ("reply", "expected"), [("CORRECT", True), ("blah\n**INCORRECT**", False), ("Verdict: CORRECT.", True)]
)
def test_judge_round_trip(reply: str, expected: bool) -> None:
    with FakeServer(reply) as srv:
        judge = LLMJudge(srv.url, "judge-model", api_key="k")
        v = judge.judge("q", "resp", "4")
        assert v.correct is expected and v.reason.startswith("judge_v1:")
        req = srv.requests[0]
        assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
        assert req["body"]["model"] == "judge-model" and req["body"]["temperature"] == 0
        assert "resp" in req["body"]["messages"][0]["content"]


def test_judge_errors() -> None:
    with FakeServer("no verdict here") as srv, pytest.raises(JudgeError, match="no CORRECT"):
        LLMJudge(srv.url, "m").judge("q", "r", "a")
    with FakeServer("CORRECT", status=500) as srv, pytest.raises(JudgeError, match="HTTP 500"):
        LLMJudge(srv.url, "m").judge("q", "r", "a")
    with pytest.raises(JudgeError, match="unreachable"):
        LLMJudge("http://127.0.0.1:9/v1", "m", timeout_s=2).judge("q", "r", "a")


def test_judge_as_reward_and_grade_fallback() -> None:
    with FakeServer("CORRECT") as srv:
        judge = LLMJudge(srv.url, "m")
        assert JudgeReward(judge)("r", {"answer": "4", "question": "q"}) == 1.0
        items = [
            GradeItem(id="1", response=r"\boxed{5}", answer="5", official=True),
            GradeItem(
                id="2", response="I looked at it.\nI could not work it out.", answer="7", official=True
            ),
        ]
        rep = grade("mathvista", items, mode="strict", num_workers=0, judge=judge)
        # only the item the rules could not settle goes to the judge
        assert [v["verdict"] for v in rep.verdicts] == [True, True]
        assert rep.verdicts[1]["reason"] == "judge_v1:match"
        assert len(srv.requests) == 2
