"""The e-mail channel's table of cases: a raw message in `fixtures/` (named after what it is)
and what the gateway must make of it. `tests/test_email_parsing.py` runs the table through the
adapter and through `intake.mail` (the fields a filing gets from it)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class EmailCase:
    """One .eml fixture and its expected reading.

    `says` and `never_says`: words that must (not) be in the writer's own text (quoted replies
    and signatures are not); `forwarded_by`: the author of the first forwarded mail;
    `fields`: answers a filing gets from it; `kept_for_person`: stored, never answered."""

    fixture: str
    sender: str | None = None
    language: str | None = None
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    forwarded_by: str | None = None
    forwarded_how: str | None = None
    fields: dict[str, object] = field(default_factory=dict)
    complete: bool = False
    kept_for_person: str | None = None
    problem: str | None = None


CASES = [
    EmailCase("complete_labelled_en", "jane.mwamba@example.net", "en",
              says=("Name: Jane Mwamba", "tailings dam"), never_says=("Kasulo community",),
              files=("river.jpg",), complete=True,
              fields={"applicant.name": "Jane Mwamba", "respondent.name": "Kolwezi Mining SARL",
                      "dispute.minerals": ["cobalt", "copper"],
                      "applicant.contact": "+243 970 000 001"}),
    EmailCase("prose_only_es", "maria.quinones@example.pe", "es",
              says=("Andes Cobre",), never_says=("Enviado desde mi iPhone",),
              fields={"applicant.contact": "maria.quinones@example.pe"}),
    EmailCase("incomplete_labelled_fr", "amani.kabila@example.cd", "fr",
              fields={"applicant.name": "Amani Kabila", "respondent.name": "Kipushi Zinc SA"}),
    EmailCase("reply_with_quote_fr", "amani.kabila@example.cd", "fr",
              says=("Quartier Mutoshi",), never_says=("Il manque encore", "a écrit"),
              fields={"applicant.address": "Quartier Mutoshi, Kipushi, Haut-Katanga, RD Congo"}),
    EmailCase("forward_inline_gmail_zh", "info@greenwatch.example.org", "zh",
              forwarded_by="wang.dashan@example.cn", forwarded_how="inline", complete=True,
              fields={"applicant.name": "王大山", "applicant.on_behalf": "agent",
                      "agent.contact": "info@greenwatch.example.org",
                      "applicant.contact": "wang.dashan@example.cn",
                      "respondent.name": "某某锡业有限公司"}),
    EmailCase("forward_inline_outlook_fr", "contact@hakimadini.example.org", "fr",
              files=("titre_foncier.pdf",), forwarded_by="beatrice.nsimba@example.cd",
              forwarded_how="inline", complete=True,
              fields={"applicant.name": "Béatrice Nsimba", "applicant.on_behalf": "agent",
                      "respondent.name": "Luisha Copper SARL"}),
    EmailCase("forward_inline_apple_es", "lucia.mamani@example.bo", "es",
              forwarded_by="lucia.mamani@example.bo", forwarded_how="inline",
              fields={"applicant.name": "Lucia Mamani", "applicant.on_behalf": "self",
                      "respondent.name": "Minera San Cristóbal S.A."}),
    EmailCase("forward_inline_thunderbird_en", "peter.banda@example.zm", "en",
              says=("For your attention",), forwarded_by="grace.mulenga@example.zm",
              forwarded_how="inline",
              fields={"applicant.name": "Grace Mulenga",
                      "applicant.contact": "grace.mulenga@example.zm"}),
    EmailCase("forward_attached_rfc822_en", "help@minersrights.example.org", "en",
              files=("contract.pdf",), forwarded_by="joseph.kalala@example.cd",
              forwarded_how="attachment", complete=True,
              fields={"applicant.name": "Joseph Kalala", "applicant.on_behalf": "agent",
                      "agent.name": "Miners' Rights Network",
                      "agent.authorisation": "to_be_supplied"}),
    EmailCase("html_only_gb2312_zh", "lixiuying@example.cn", "zh", says=("姓名：李秀英",),
              complete=True,
              fields={"applicant.name": "李秀英", "applicant.contact": "13912345678",
                      "dispute.claims": "停止浸矿并修复水源。"}),
    EmailCase("big5_traditional_zh", "chen.mei@example.tw", "zh", says=("雲母礦場",),
              fields={"applicant.name": "陳美"}),
    EmailCase("html_meta_charset_gbk_zh", "zhu.rongji@example.cn", "zh", says=("姓名：朱镕基",),
              fields={"applicant.name": "朱镕基"}),
    EmailCase("inline_photo_thunderbird_en", "peter.banda@example.zm", "en",
              says=("Kafue river",), files=("kafue_river.jpg",)),
    EmailCase("attachment_in_html_alternative_apple_es", "lucia.mamani@example.bo", "es",
              says=("Minera San Cristóbal",), files=("titulo_propiedad.pdf",)),
    EmailCase("empty_plain_alternative_es", "ana.condori@example.pe", "es",
              says=("La mina Andes Cobre contamina el agua",)),
    EmailCase("subject_absence_fr", "amani.kabila@example.cd", "fr", says=("puits",)),
    EmailCase("own_words_after_wrote_en", "jane.mwamba@example.net", "en",
              says=("On 12 March the mine manager wrote:", "three children are sick")),
    EmailCase("template_request_en", "ruth.phiri@example.mw", "en"),
    EmailCase("anonymous_name_en", "worker.kamoto@example.com", "en",
              fields={"respondent.name": "Kamoto Copper Company"}),
    # A web form's relay writes From itself and Reply-To the person who filled the form in.
    EmailCase("web_form_relay_en", "joseph.kalala@example.cd", "en",
              says=("Forty workers",), never_says=("contact form",), complete=True,
              fields={"applicant.name": "Joseph Kalala", "applicant.on_behalf": "self",
                      "applicant.contact": "joseph.kalala@example.cd"}),
    EmailCase("noreply_relay_fr", "amani.kabila@example.cd", "fr",
              fields={"applicant.name": "Amani Kabila", "respondent.name": "Kipushi Zinc SA",
                      "applicant.contact": "amani.kabila@example.cd"}),
    # Outlook and Exchange wrap the files (and sometimes the body) in winmail.dat (TNEF).
    EmailCase("outlook_winmail_dat_fr", "beatrice.nsimba@example.cd", "fr",
              says=("bulldozers", "Luisha"),
              files=("photo du champ détruit.jpg", "procès-verbal de la réunion.pdf"),
              fields={"applicant.name": "Béatrice Nsimba",
                      "respondent.name": "Luisha Copper SARL"}),
    EmailCase("exchange_tnef_only_en", "peter.banda@example.zm", "en",
              says=("has not paid forty workers",), files=("payslips November 2025.pdf",),
              fields={"applicant.name": "Peter Banda",
                      "respondent.name": "Tenke Mining Services SARL"}),
    # Bad input: kept for a person, never answered; or read with a problem noted.
    EmailCase("outlook_winmail_dat_truncated_fr", "beatrice.nsimba@example.cd", "fr",
              says=("bulldozers",), files=("winmail.dat",),
              problem="winmail.dat could not be unpacked"),
    EmailCase("broken_boundary", kept_for_person="broken MIME structure"),
    EmailCase("nested_60_levels", kept_for_person="nested deeper than 20 levels"),
    EmailCase("header_200kb", kept_for_person="header X-Padding is longer than"),
    EmailCase("empty", kept_for_person="empty message"),
    EmailCase("auto_reply_out_of_office_fr", "amani.kabila@example.cd",
              kept_for_person="Auto-Submitted: auto-replied"),
    EmailCase("bounce_delivery_status", "mailer-daemon@mx.example.net",
              kept_for_person="multipart/report"),
    EmailCase("auto_reply_without_headers_en", "info@kolwezimining.example.cd",
              kept_for_person="by its subject"),
    EmailCase("unknown_charset", "kofi.mensah@example.gh", "en", says=("galamsey pits",),
              problem="unknown charset x-klingon-2026"),
    EmailCase("attachment_zero_bytes_passwd", "tester@example.org", "en",
              says=("waste rock",), files=("../../etc/passwd",)),
]
