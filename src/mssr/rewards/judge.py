"""An optional LLM judge behind any OpenAI-compatible ``/chat/completions`` endpoint (stdlib only).

Used only when configured (a base URL and a model name). The prompt lives in a versioned file
(``prompts/judge_v<N>.txt``) so that a change of prompt is a change of version, recorded with every verdict.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from mssr.rewards.text import to_text
from mssr.rewards.verify import Verdict

DEFAULT_PROMPT_VERSION = "v1"
MAX_RESPONSE_CHARS = 8000  # keep the prompt bounded; the final answer is at the end, so keep the tail


class JudgeError(RuntimeError):
    """The endpoint failed or answered something that is not a verdict."""


def load_prompt(version: str = DEFAULT_PROMPT_VERSION) -> str:
    if not re.fullmatch(r"v\d+", version):
        raise ValueError(f"judge prompt version must look like 'v1', got {version!r}")
    path = resources.files("mssr.rewards") / "prompts" / f"judge_{version}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"no judge prompt {version!r} ({path})")
    return path.read_text(encoding="utf-8")


@dataclass
class LLMJudge:
    """Ask an OpenAI-compatible chat endpoint whether a response's final answer matches the reference.

    ``base_url`` is the API root (``http://host:8000/v1``); the request goes to ``{base_url}/chat/completions``
    with temperature 0. ``api_key`` is sent as a bearer token when given.
    """

    base_url: str
    model: str
    api_key: str | None = None
    prompt_version: str = DEFAULT_PROMPT_VERSION
    timeout_s: float = 60.0
    max_tokens: int = 512

    def __post_init__(self) -> None:
        self._template = load_prompt(self.prompt_version)

    def prompt(self, question: str, response: str, answer: str, choices: list[str] | None = None) -> str:
        response = to_text(response)
        if len(response) > MAX_RESPONSE_CHARS:
            response = "…" + response[-MAX_RESPONSE_CHARS:]
        opts = "\n".join(f"({chr(65 + i)}) {c}" for i, c in enumerate(choices or []))
        values = {
            "question": to_text(question),
            "choices": opts,
            "answer": to_text(answer),
            "response": response,
        }
        # one pass, so braces in the template's LaTeX or in a response are never taken for placeholders
        return re.sub(r"\{(question|choices|answer|response)\}", lambda m: values[m.group(1)], self._template)

    def complete(self, prompt: str) -> str:
        body = json.dumps(
            {
                "model": self.model,
                "messages": [{"role": "user", "content": prompt}],
                "temperature": 0,
                "max_tokens": self.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                data = json.loads(resp.read().decode("utf-8", errors="replace"))
        except urllib.error.HTTPError as exc:
            raise JudgeError(f"judge endpoint {url} returned HTTP {exc.code}: {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise JudgeError(f"judge endpoint {url} unreachable: {exc}") from None
        except json.JSONDecodeError as exc:
            raise JudgeError(f"judge endpoint {url} returned invalid JSON: {exc}") from None
        try:
            return to_text(data["choices"][0]["message"]["content"])
        except (KeyError, IndexError, TypeError):
            raise JudgeError(f"judge endpoint {url} returned an unexpected body: {str(data)[:300]}") from None

    @staticmethod
    def parse(reply: str) -> bool:
        """The verdict on the reply's last non-empty line (CORRECT / INCORRECT)."""
        lines = [ln.strip().strip("*.:` ").upper() for ln in reply.strip().splitlines() if ln.strip()]
        if lines:
            if lines[-1] in ("CORRECT", "INCORRECT"):
                return lines[-1] == "CORRECT"
            words = re.findall(r"\b(INCORRECT|CORRECT)\b", lines[-1])
            if words:
                return words[-1] == "CORRECT"
        raise JudgeError(f"judge reply has no CORRECT/INCORRECT verdict: {reply[-200:]!r}")

    def judge(self, question: str, response: str, answer: str, choices: list[str] | None = None) -> Verdict:
        ok = self.parse(self.complete(self.prompt(question, response, answer, choices)))
        return Verdict(ok, None, f"judge_{self.prompt_version}:{'match' if ok else 'mismatch'}")


class JudgeReward:
    """A reward that asks an :class:`LLMJudge` (picklable: holds only the judge's settings)."""

    columns = ("answer", "choices", "question")

    def __init__(self, judge: LLMJudge) -> None:
        self.judge = judge

    def __call__(self, response: str, record: Mapping[str, Any]) -> float:
        v = self.judge.judge(
            record.get("question", ""), response, record["answer"], record.get("choices") or None
        )
        return 1.0 if v.correct else 0.0
