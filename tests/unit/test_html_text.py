"""The text part generated from the HTML when a template has no text (outreach/mail/html_text.py)."""

from __future__ import annotations

import pytest

from outreach.mail.html_text import html_to_text


@pytest.mark.parametrize(("html", "text"), [
    ('<p>Read <a href="https://example.com/guide">the <b>guide</b></a>.</p>',
     "Read the guide (https://example.com/guide)."),
    ('<a href="https://x.example/">https://x.example</a>', "https://x.example/"),
    ('<a href="mailto:ann@x.example">ann@x.example</a>', "ann@x.example"),
    ('<a href="#top">Top</a> <a href="">Empty</a>', "Top Empty"),
    ("<h1>Hello</h1><p>One</p><p>Two</p>", "Hello\n\nOne\n\nTwo"),
    ("line1<br>line2<br/>line3", "line1\nline2\nline3"),
    ("<div>a</div><div>b</div>", "a\nb"),
    ("<ul><li>one</li><li>two</li></ul><p>after</p>", "- one\n- two\n\nafter"),
    ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td><td>d</td></tr></table>", "a b\nc d"),
    ("<p>Fish &amp; chips &lt;3 &eacute;t&eacute; &#8364;5&nbsp;each &copy;</p>",
     "Fish & chips <3 été €5 each ©"),
    ("<p>  lots   of\n\n  space\t here </p>", "lots of space here"),
    ("<html><head><title>T</title><style>p { color: red }</style></head>"
     "<body><script>var x = 1;</script><p>Body</p></body></html>", "Body"),
    ('<p><img src="logo.png" alt="ACME"> news <img src="/t/o/x" width="1" alt=""></p>', "ACME news"),
    ("<p>a</p><hr><p>b</p>", "a\n\n----\n\nb"),
    ("", ""),
])
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_a_template_without_text_sends_the_html_as_text(cenv) -> None:
    list_id = cenv.leads("ann@example.com", first_name="Ann & Bo")
    template_id = cenv.template(
        subject="Hi", text="",
        html='<h1>Hello {{ first_name }}</h1><p>Read <a href="https://example.com/g">the guide</a>'
             '</p><p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>')
    campaign_id = cenv.launched([list_id], template_id)
    assert cenv.run(campaign_id)["stats"]["sent"] == 1
    msg = cenv.messenger.to("ann@example.com")
    text = msg.get_body(("plain",)).get_content()
    lines = text.strip().splitlines()
    assert lines[:3] == ["Hello Ann & Bo", "", "Read the guide (https://example.com/g)"]
    assert lines[4].startswith("Unsubscribe (http") and "/u/" in lines[4]
    assert "<" not in text and "&amp;" not in text


def test_a_written_text_part_is_kept(cenv) -> None:
    list_id = cenv.leads("ann@example.com")
    template_id = cenv.template(subject="Hi", text="Plain words", html="<p>Other words</p>")
    cenv.run(cenv.launched([list_id], template_id))
    assert cenv.messenger.to("ann@example.com").get_body(("plain",)).get_content().strip() == (
        "Plain words")
