"""The pages in a real headless Chromium, against the app served by uvicorn."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.slow]


def test_a_processors_inbox_shows_a_new_task_live_and_the_form_completes_it(live_app, login):
    processor = login("priya")
    processor.goto(live_app + "/inbox/")
    expect(processor.locator("[data-live-status]")).to_have_text("live")
    loan_officer = login("olivia")

    # given: a loan officer starts the processing phase of the demo journey
    loan_officer.goto(live_app + "/processes/start/")
    loan_officer.select_option("#workflow", "phase-processing")
    loan_officer.fill("#context", '{"loan_amount": 250000}')
    loan_officer.click("button:has-text('Start')")
    expect(loan_officer.locator("h1")).to_contain_text("Process #")
    process_url = loan_officer.url

    # then: the processor's inbox shows the new task without a reload
    row = processor.locator("tr", has_text="Open processing file")
    expect(row).to_be_visible(timeout=10_000)

    # when: the processor submits the generated form with a required field left empty
    row.get_by_role("link", name="Open processing file").click()
    processor.click("button:has-text('Complete')")
    expect(processor.locator(".form-row.invalid .errorlist")).to_contain_text("required")

    # and then fills it in
    processor.select_option("select[name=documents_received]", "true")
    processor.fill("input[name=processor_notes]", "All documents in")
    processor.click("button:has-text('Complete')")
    expect(processor.locator("#task-panel h2")).to_have_text("Completed")

    # then: the process page draws the new state
    loan_officer.goto(process_url)
    state = loan_officer.evaluate("GNDP.current.cy.getElementById('atom-proc-open-file').data('state')")
    assert state == "completed"
    expect(loan_officer.locator("[data-progress]")).not_to_have_text("0%")


def test_the_process_graph_recolours_live(live_app, login):
    processor = login("priya")
    loan_officer = login("olivia")
    loan_officer.goto(live_app + "/processes/start/")
    loan_officer.select_option("#workflow", "phase-processing")
    loan_officer.click("button:has-text('Start')")
    expect(loan_officer.locator("[data-live-status]")).to_have_text("live")

    processor.goto(live_app + "/inbox/")
    processor.locator("tr", has_text="Open processing file").get_by_role("link").first.click()
    processor.select_option("select[name=documents_received]", "true")
    processor.click("button:has-text('Complete')")

    loan_officer.wait_for_function(
        "() => GNDP.current.cy.getElementById('atom-proc-open-file').data('state') === 'completed'", timeout=10_000)
