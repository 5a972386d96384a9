"""The discussion and the bell in a real headless Chromium, against the app served by uvicorn."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow]


def test_a_mention_appears_live_for_a_second_user_viewing_the_process_and_raises_their_bell(live_app, login):
    processor = login("priya")
    loan_officer = login("olivia")

    # given: a loan officer starts the processing phase; its first task goes to the processor
    loan_officer.goto(live_app + "/processes/start/")
    loan_officer.select_option("#workflow", "phase-processing")
    loan_officer.fill("#context", '{"loan_amount": 250000}')
    loan_officer.click("button:has-text('Start')")
    expect(loan_officer.locator("h1")).to_contain_text("Process #")
    process_url = loan_officer.url

    # and the processor is looking at the same process, live, bell included
    processor.goto(process_url)
    expect(processor.locator("[data-live-status]")).to_have_text("live")
    expect(processor.locator("[data-bell]")).to_have_attribute("data-bell-live", "on")
    bell = processor.locator("[data-bell-count]")
    expect(bell).to_have_text("1")  # the task routed to her
    expect(processor.locator("#discussion-live")).to_contain_text("No comments yet.")

    # when: the loan officer comments, mentioning her
    loan_officer.fill("#comment-body", "@priya the **appraisal** is in")
    loan_officer.click("button:has-text('Post comment')")
    expect(loan_officer.locator("#discussion-live .comment")).to_contain_text("the appraisal is in")
    expect(loan_officer.locator("#comment-body")).to_have_value("")

    # then: it appears on her page without a reload, rendered, and her bell count rises
    comment = processor.locator("#discussion-live .comment", has_text="the appraisal is in")
    expect(comment).to_be_visible(timeout=10_000)
    expect(comment.locator(".mention")).to_have_text("@priya")
    expect(comment.locator(".comment-body strong")).to_have_text("appraisal")
    expect(bell).to_have_text("2", timeout=10_000)

    # her notifications page lists it, and a second mention arrives there live
    processor.click("[data-bell]")
    expect(processor.locator("#notifications-live")).to_contain_text("olivia mentioned you on process")
    loan_officer.fill("#comment-body", "and @priya the title search too")
    loan_officer.click("button:has-text('Post comment')")
    expect(processor.locator(".notification.unread")).to_have_count(3, timeout=10_000)
    expect(processor.locator("[data-bell-count]")).to_have_text("3")

    # and a notification takes her to the comment
    processor.get_by_role("button", name="olivia mentioned you on process").first.click()
    expect(processor).to_have_url(re.compile(re.escape(process_url) + r"#comment-\d+$"))
    expect(processor.locator("[data-bell-count]")).to_have_text("2")
