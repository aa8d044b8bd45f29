"""Server-side paging for the UI's lists: which page, and the links of the pager."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

# Pages named around the current one; the first and last are always named too.
WINDOW = 2


@dataclass(frozen=True)
class Pager:
    number: int  # 1-based
    per_page: int
    total: int
    base_url: str  # the list's URL without the page parameter
    params: tuple = ()  # the other query parameters, kept on every link

    @classmethod
    def from_request(cls, request, per_page: int = 50, keep: tuple[str, ...] = ()) -> Pager:
        """The page the request asks for (a bad or missing ?page= is the first)."""
        try:
            number = max(1, int(request.GET.get("page", "1")))
        except ValueError:
            number = 1
        params = tuple((k, request.GET[k]) for k in keep if request.GET.get(k))
        return cls(number, per_page, 0, request.path, params)  # relative: proxy-proof

    def with_total(self, total: int) -> Pager:
        return Pager(self.number, self.per_page, total, self.base_url, self.params)

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    def url(self, number: int) -> str:
        params = list(self.params)
        if number > 1:
            params.append(("page", str(number)))
        return self.base_url + ("?" + urlencode(params) if params else "")

    @property
    def previous_url(self) -> str | None:
        return self.url(self.number - 1) if self.number > 1 else None

    @property
    def next_url(self) -> str | None:
        return self.url(self.number + 1) if self.number < self.pages else None

    def links(self) -> list[int | None]:
        """Page numbers to show, None where a run of them is left out (an ellipsis)."""
        shown = {1, self.pages} | set(range(self.number - WINDOW, self.number + WINDOW + 1))
        out: list[int | None] = []
        last = 0
        for n in sorted(n for n in shown if 1 <= n <= self.pages):
            if n - last > 1:
                out.append(None)
            out.append(n)
            last = n
        return out
