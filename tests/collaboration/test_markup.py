"""Comments are markdown rendered to safe HTML; mentions are found and highlighted."""

from __future__ import annotations

from collaboration.markup import mentioned_names, render


def test_markdown_is_rendered():
    html = render("**bold** and `code`\n\n- one\n- two\n\n[docs](https://example.com/x)")

    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "<li>one</li>" in html
    assert '<a href="https://example.com/x" rel="nofollow noopener noreferrer">docs</a>' in html


def test_scripts_handlers_styles_and_dangerous_links_are_removed():
    html = render('<script>alert(1)</script><img src=x onerror="alert(2)">'
                  '<a href="javascript:alert(3)">click</a> <p style="color:red" onclick="x()">hi</p>'
                  "[evil](javascript:alert(4)) <iframe src='https://evil.example'></iframe>")

    lowered = html.lower()
    for forbidden in ("<script", "alert(1)", "<img", "onerror", "javascript:", "onclick", "style=", "<iframe"):
        assert forbidden not in lowered, (forbidden, html)
    assert "click" in html and "hi" in html


def test_mentions_are_found_once_each_without_trailing_punctuation():
    names = mentioned_names("thanks @priya. and @bob, cc @priya; not an@address.com")

    # "priya." is tried as written first (user names may contain dots), then without the dot
    assert names == ["priya.", "priya", "bob"]


def test_only_the_given_names_are_highlighted_and_never_inside_code_or_links():
    html = render("@priya look at `@priya` and [@priya](https://x.example) but not @bob", {"priya"})

    assert html.count('<span class="mention">@priya</span>') == 1
    assert "<code>@priya</code>" in html
    assert "@bob" in html and '<span class="mention">@bob' not in html
