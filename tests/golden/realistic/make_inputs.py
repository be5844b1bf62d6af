"""Writes the input files of the realistic golden set (run it to rebuild them; the outputs are
checked by tests/test_golden_realistic.py, regenerated with BULK_SYNC_UPDATE_GOLDEN=1).

Each case folder holds the export as a person would drop it, `mapping.yaml`, and `case.json`
(the flags of the run). The quirks are mixed in on purpose: see each function's docstring.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

HERE = Path(__file__).resolve().parent


def case(name: str, mapping: str, flags: list[str] | None = None) -> Path:
    d = HERE / name
    d.mkdir(exist_ok=True)
    (d / "mapping.yaml").write_text(mapping)
    (d / "case.json").write_text(json.dumps({"flags": flags or []}, indent=2) + "\n")
    return d


def eu_crm_export() -> None:
    """German CRM export: UTF-8 with BOM, semicolons, dd.mm.yyyy dates in Berlin time, amounts with
    a decimal comma (one column whose first cells read both ways: 12.000), umlauts, a bad email."""
    d = case(
        "eu_crm_export",
        """\
version: 1
description: German CRM export (semicolons, decimal comma, Berlin time)
fields:
  externalId: {column: Termin-ID, required: true}
  subject: Betreff
  startTime: {column: Beginn, datetime: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
  endTime: {column: Ende, datetime: {format: "%d.%m.%Y %H:%M", timezone: Europe/Berlin}}
  engagementType.name: {value: Kundentermin}
  engagementType.activityType: {value: APPOINTMENT}
  engagementUsers[0].externalId: Berater-ID
  engagementUsers[0].email: {column: Berater E-Mail, lower: true}
  opportunity.externalId: Chance-ID
  opportunity.amount: Betrag
""",
    )
    rows = [
        ["Termin-ID", "Betreff", "Beginn", "Ende", "Berater-ID", "Berater E-Mail", "Chance-ID", "Betrag"],
        ["T-1001", "Erstberatung Müller", "03.11.2026 09:00", "03.11.2026 10:00", "B-1", "Jürgen.Weiß@beispiel.de", "C-1", "12.000"],
        ["T-1002", "Vor-Ort-Termin Schäfer", "04.11.2026 14:30", "04.11.2026 15:15", "B-2", "anna.koch@beispiel.de", "C-2", "1.234,50"],
        ["T-1003", "Rückruf Özdemir", "05.11.2026 11:00", "05.11.2026 10:30", "B-1", "jürgen.weiß@beispiel.de", "C-3", "0,99"],
        ["T-1004", "Angebot Groß", "06.11.2026 08:00", "06.11.2026 09:00", "B-3", "lena@@beispiel.de", "C-4", "45.000"],
        ["T-1005", "Nachfassen Weber", "29.03.2026 02:30", "29.03.2026 03:30", "B-2", "anna.koch@beispiel.de", "C-5", "750"],
    ]  # fmt: skip
    text = "\r\n".join(";".join(r) for r in rows) + "\r\n"
    (d / "termine.csv").write_bytes(codecs.BOM_UTF8 + text.encode())


def ops_three_reps() -> None:
    """An ops workbook, one sheet per rep with the same layout, each ending in a Total row; zips
    typed as numbers with the format 00000; shares as percents; a chart-less hidden 'Old' sheet."""
    d = case(
        "ops_three_reps",
        """\
version: 1
description: Ops workbook, one sheet per rep
sheets: "*"
fields:
  externalId: {column: Booking, required: true}
  subject: Customer
  startTime: {column: When, datetime: {timezone: America/New_York}}
  engagementType.name: {value: Home visit}
  engagementType.activityType: {value: APPOINTMENT}
  engagementUsers[0].externalId: Rep ID
  engagementUsers[0].shareOfSale: Share
  account.externalId: Booking
  account.addresses[0].zip: Zip
  account.addresses[0].city: City
""",
    )
    import datetime as dt

    wb = Workbook()
    wb.remove(wb.active)
    n = 0
    for rep, zips in (("Ann", [2135, 2139, 1002]), ("Bo", [90210, 6010]), ("Cy", [501, 33101])):
        ws = wb.create_sheet(rep)
        ws.append(["Booking", "Customer", "When", "Rep ID", "Share", "Zip", "City", "Value"])
        for k, z in enumerate(zips):
            n += 1
            ws.append(
                [
                    f"B-{n:03d}",
                    f"Customer {n}",
                    dt.datetime(2026, 11, 2 + n, 9 + k),
                    f"R-{rep}",
                    0.5 if k else 1,
                    z,
                    "Springfield",
                    1000 * n,
                ]
            )
            ws.cell(ws.max_row, 6).number_format = "00000"
            ws.cell(ws.max_row, 5).number_format = "0%"
        ws.append(["Total", None, None, None, None, None, None, f"=SUM(H2:H{ws.max_row})"])
        ws.cell(ws.max_row, 1).font = Font(bold=True)
        ws.append([None, "checked by Dana", None, None, None, None, None, None])
    old = wb.create_sheet("Old")
    old.append(["Booking", "Customer"])
    old.append(["B-999", "never read"])
    old.sheet_state = "hidden"
    wb.save(d / "bookings.xlsx")


def salesforce_percents() -> None:
    """A Salesforce Lightning report: title lines, quoted cells, US dates with AM/PM, money with $
    and grouping, a probability in percent written with two decimals, the 'Grand Totals' and
    footer lines."""
    d = case(
        "salesforce_report_percents",
        """\
version: 1
description: Salesforce events report with opportunity probability
fields:
  externalId: {column: Activity ID, required: true}
  subject: Subject
  startTime: {column: Start, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  endTime: {column: End, datetime: {format: "%m/%d/%Y %I:%M %p", timezone: America/Chicago}}
  engagementType.name: Type
  engagementType.activityType: {column: Type, map: {Meeting: MEETING, Call: CALL}}
  engagementUsers[0].externalId: Assigned ID
  engagementUsers[0].shareOfSale: Split
  opportunity.externalId: Opportunity ID
  opportunity.amount: Amount
""",
    )
    lines = [
        '"Meetings this quarter"',
        '"Filtered By: Type equals Meeting,Call"',
        "",
        '"Activity ID","Subject","Type","Start","End","Assigned ID","Split","Opportunity ID","Amount"',
        '"00U1","Roof inspection - Lee","Meeting","11/3/2026 9:00 AM","11/3/2026 10:00 AM","005A","33.34%","006A","$37,483.86"',
        '"00U2","Demo - Sato","Meeting","11/4/2026 2:30 PM","11/4/2026 3:15 PM","005B","66.66%","006B","$1,500.00"',
        '"00U3","Follow-up call - Brooks","Call","11/5/2026 10:00 AM","11/5/2026 10:15 AM","005A","100.00%","006C","$12,000"',
        '"00U4","Site visit - Haddad","Meeting","11/6/2026 11:00 AM","11/6/2026 12:00 PM","005C","57.85%","006D","$0.07"',
        '"00U5","Demo - Ortiz","Meeting","11/7/2026 1:00 PM","11/7/2026 2:00 PM","005C","50","006E","$250.00"',
        "",
        '"Grand Totals (5 records)"',
        '"Generated By: Dana Whitfield 11/24/2026 4:10 PM"',
        '"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."',
    ]  # fmt: skip
    (d / "report.csv").write_text("\r\n".join(lines) + "\r\n")


def damaged_utf8() -> None:
    """A UTF-8 export that went through a tool that wrote two cp1252 bytes into one row."""
    d = case(
        "damaged_utf8",
        """\
version: 1
fields:
  externalId: {column: ID, required: true}
  subject: Title
  account.externalId: Account
  account.name: Company
""",
    )
    text = "ID,Title,Account,Company\n"
    for i, (title, company) in enumerate(
        [
            ("Café meeting", "Crème Brûlée GmbH"),
            ("Visite à Genève", "Société Générale"),
            ("Naïve demo", "Zoë & Co"),
            ("Señor Núñez", "Peña SL"),
            ("Øresund call", "Smørrebrød ApS"),
        ],
        start=1,
    ):
        text += f"M-{i},{title},A-{i},{company}\n"
    data = text.encode().replace("Société".encode(), b"Soci\xe9t\xe9")
    (d / "meetings.csv").write_bytes(data)


def cp1252_confirmed() -> None:
    """Excel's 'CSV (Comma delimited)' on Western Windows: cp1252, confirmed with --encoding (it
    would be refused without: 'ñ' is 'ń' in cp1250). Curly quotes, an en dash, a euro sign."""
    d = case(
        "cp1252_confirmed",
        """\
version: 1
fields:
  externalId: {column: Id, required: true}
  subject: Subject
  content: Notes
""",
        ["--encoding", "cp1252"],
    )
    text = (
        "Id,Subject,Notes\r\n"
        "1,Visita – Peña,“Presupuesto” 1.200 €\r\n"
        "2,Llamada a Muñoz,Preguntó por el año\r\n"
    )
    (d / "export.csv").write_bytes(text.encode("cp1252"))


def us_amounts_ambiguous() -> None:
    """A US export whose amount column holds only whole thousands ('1,500', '12,000'): nothing in the
    column says whether the comma is a thousands separator, so those rows are invalid until the
    mapping says `decimal: "."`; rows with plain amounts go through. Latitudes settle themselves."""
    d = case(
        "us_amounts_ambiguous",
        """\
version: 1
fields:
  externalId: {column: Deal Activity, required: true}
  subject: Note
  opportunity.externalId: Deal
  opportunity.amount: Value
  account.externalId: Deal
  account.latitude: Lat
  account.longitude: Lng
""",
    )
    text = (
        "Deal Activity,Note,Deal,Value,Lat,Lng\n"
        'DA-1,Kickoff,D-1,"1,500",41.947,-87.665\n'
        'DA-2,Pricing,D-2,"12,000",42.045,-87.688\n'
        "DA-3,Small add-on,D-3,750,40.713,-74.006\n"
        "DA-4,Renewal,D-4,,34.052,-118.244\n"
    )
    (d / "deals.csv").write_text(text)


def hubspot_emails() -> None:
    """A HubSpot-shaped export: 'Name (email)' owners taken apart with extract, an attendee list of
    emails split on ';' (one of them malformed), a time with offset, an end before the start."""
    d = case(
        "hubspot_emails",
        """\
version: 1
fields:
  externalId: {column: Record ID, required: true}
  subject: Meeting name
  startTime: {column: Start, datetime: {timezone: UTC}}
  endTime: {column: End, datetime: {timezone: UTC}}
  engagementType.name: {value: Meeting}
  engagementType.activityType: {value: MEETING}
  engagementUsers[0].externalId: {column: Owner, extract: '\\(([^)]+)\\)', lower: true}
  engagementUsers[0].email: {column: Owner, extract: '\\(([^)]+)\\)', lower: true}
  engagementUsers[0].name: {column: Owner, extract: '^([^(]+)'}
  contact.externalId: Contact ID
  contact.emailAddresses[]: {column: Attendees, split: ";", lower: true}
""",
    )
    text = (
        "Record ID,Meeting name,Start,End,Owner,Contact ID,Attendees\n"
        "82771934501,Discovery,2026-11-03T09:00:00-05:00,2026-11-03T09:45:00-05:00,Dana Whitfield (dana@brightroof.com),C-1,ann@example.com; Mia@Example.com\n"
        "82771934502,Demo,2026-11-04T14:30:00Z,2026-11-04T14:00:00Z,Marcus Ochoa (marcus@brightroof.com),C-2,luis@example.com\n"
        "82771934503,Review,2026-11-05T10:00:00Z,2026-11-05T11:00:00Z,Priya Raman (priya@brightroof.com),C-3,grace@example;x@example.com\n"
    )  # fmt: skip
    (d / "meetings.csv").write_text(text)


def handmade_bookings() -> None:
    """A hand-made workbook: a title row, the header on row 3, the data starting in column B,
    dates typed as text in one row, a 'Grand total' row and a notes block under it (one note line
    repeats a real booking's id: it must not supersede it)."""
    d = case(
        "handmade_bookings",
        """\
version: 1
fields:
  externalId: {column: Ref, required: true}
  subject: What
  startTime: {column: Date, datetime: {format: ["%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S"], timezone: Europe/London}}
  engagementType.name: {value: Survey}
  engagementType.activityType: {value: APPOINTMENT}
  engagementUsers[0].externalId: Surveyor
""",
    )
    import datetime as dt

    wb = Workbook()
    ws = wb.active
    ws.title = "Bookings"
    ws["B1"] = "Survey bookings - November"
    ws.append([])
    ws.append([None, "Ref", "What", "Date", "Surveyor", "Fee"])
    ws.append([None, "S-01", "Loft survey", dt.datetime(2026, 11, 2, 9, 0), "SV-1", 120])
    ws.append([None, "S-02", "Damp check", "03/11/2026 14:00", "SV-2", 80])
    ws.append([None, "S-03", "Full survey", dt.datetime(2026, 11, 4, 10, 30), "SV-1", 450])
    ws.append([None, "Grand total", None, None, None, 650])
    ws.append([None, None, "Notes:", None, None, None])
    ws.append([None, "S-01", "moved from October", None, None, None])
    wb.save(d / "bookings.xlsx")


OUTLOOK_EN = [
    "Subject", "Start Date", "Start Time", "End Date", "End Time", "All day event", "Reminder on/off",
    "Reminder Date", "Reminder Time", "Meeting Organizer", "Required Attendees", "Optional Attendees",
    "Meeting Resources", "Billing Information", "Categories", "Description", "Location", "Mileage",
    "Priority", "Private", "Sensitivity", "Show time as",
]  # fmt: skip


def _outlook(rows: list[list[str]]) -> str:
    """Outlook's CSV: every cell quoted, CRLF, a description with a line break inside its quotes."""
    return "".join(",".join('"' + c.replace('"', '""') + '"' for c in r) + "\r\n" for r in rows)


def outlook_calendar_en() -> None:
    """Outlook's calendar export (File > Open & Export > Import/Export > Export to a file > CSV),
    English: the start and the end each in a date and a time column (M/D/YYYY, h:mm:ss AM/PM), a
    reminder's date and time beside them (never the start), no id column (the subject and start
    make one), a description holding a line break, an all-day event (midnight to midnight), and a
    meeting typed with its end before its start (sent, with the end-before-start warning). New York
    time; no row in the hour the clocks go back."""
    d = case(
        "outlook_calendar_en",
        """\
version: 1
description: Outlook calendar export (English), New York time
fields:
  externalId: {template: "{Start Date} {Start Time} {Subject}", required: true}
  subject: Subject
  content: Description
  startTime:
    template: "{Start Date} {Start Time}"
    datetime: {format: "%m/%d/%Y %I:%M:%S %p", timezone: America/New_York, ambiguous: error}
  endTime:
    template: "{End Date} {End Time}"
    datetime: {format: "%m/%d/%Y %I:%M:%S %p", timezone: America/New_York, ambiguous: error}
  engagementType.name: {value: Calendar appointment}
  engagementType.activityType: {value: MEETING}
  engagementUsers[0].externalId: Meeting Organizer
  engagementUsers[0].name: Meeting Organizer
""",
    )
    blank = [""] * 9
    rows = [
        OUTLOOK_EN,
        ["Roof inspection - Lee", "10/13/2026", "9:00:00 AM", "10/13/2026", "10:30:00 AM", "False", "True",
         "10/13/2026", "8:45:00 AM", "Dana Whitfield", "Ann Lee", "", *blank[:3],
         "Gate code 1004.\nDog in the yard.", "1420 W Addison St", "", "Normal", "False", "Normal", "2"],
        ["Quote call - Sato", "10/2/2026", "2:30:00 PM", "10/2/2026", "3:00:00 PM", "False", "False", "", "",
         "Marcus Ochoa", "", "", *blank[:3], "", "Phone", "", "High", "False", "Normal", "2"],
        ["Trade show", "11/12/2026", "12:00:00 AM", "11/13/2026", "12:00:00 AM", "True", "False", "", "",
         "Dana Whitfield", "", "", *blank[:3], "", "McCormick Place", "", "Normal", "False", "Normal", "3"],
        ["Follow-up - Brooks", "11/3/2026", "4:00:00 PM", "11/3/2026", "3:00:00 PM", "False", "True",
         "11/3/2026", "3:45:00 PM", "Priya Raman", "", "", *blank[:3], "", "", "", "Normal", "False",
         "Normal", "2"],
    ]  # fmt: skip
    (d / "calendar.csv").write_text(_outlook(rows), encoding="utf-8", newline="")


OUTLOOK_NL = [
    "Onderwerp", "Begindatum", "Begintijd", "Einddatum", "Eindtijd", "Gebeurtenis duurt hele dag",
    "Herinnering aan/uit", "Herinneringsdatum", "Herinneringstijd", "Organisator van vergadering",
    "Vereiste deelnemers", "Optionele deelnemers", "Vergaderbronnen", "Factuurgegevens", "Categorieën",
    "Beschrijving", "Locatie", "Reisafstand", "Prioriteit", "Privé", "Gevoeligheid", "Weergeven als",
]  # fmt: skip


def outlook_calendar_nl() -> None:
    """Outlook's calendar export in Dutch: the same columns under Dutch names (Begindatum,
    Begintijd, Einddatum, Eindtijd, Herinneringsdatum...), day-first dates without leading zeros
    (13-10-2026), 24-hour times (9:00:00), Onwaar/Waar, UTF-8 with a byte-order mark. Amsterdam
    time: one visit on the Sunday the clocks go back, at 10:00 (after the change: one instant),
    and one in a hand-typed row whose date is not a date."""
    d = case(
        "outlook_calendar_nl",
        """\
version: 1
description: Outlook-agenda-export (Nederlands), Amsterdamse tijd
fields:
  externalId: {template: "{Begindatum} {Begintijd} {Onderwerp}", required: true}
  subject: Onderwerp
  content: Beschrijving
  startTime:
    template: "{Begindatum} {Begintijd}"
    datetime: {format: "%d-%m-%Y %H:%M:%S", timezone: Europe/Amsterdam, ambiguous: error}
  startTimeLocalized:
    template: "{Begindatum} {Begintijd}"
    datetime: {format: "%d-%m-%Y %H:%M:%S"}
  endTime:
    template: "{Einddatum} {Eindtijd}"
    datetime: {format: "%d-%m-%Y %H:%M:%S", timezone: Europe/Amsterdam, ambiguous: error}
  engagementType.name: {value: Afspraak}
  engagementType.activityType: {value: APPOINTMENT}
  engagementUsers[0].externalId: Organisator van vergadering
  engagementUsers[0].name: Organisator van vergadering
""",
    )
    tail = ["", "", "", "", "", "Normaal", "Onwaar", "Normaal", "2"]
    rows = [
        OUTLOOK_NL,
        ["Dakinspectie De Vries", "13-10-2026", "9:00:00", "13-10-2026", "10:30:00", "Onwaar", "Waar",
         "13-10-2026", "8:45:00", "Sanne Bakker", "Jan de Vries", "", "", "", "", "Poortcode 1004",
         "Keizersgracht 12", *tail[4:]],
        ["Offerte Jansen", "25-10-2026", "10:00:00", "25-10-2026", "11:00:00", "Onwaar", "Onwaar", "", "",
         "Sanne Bakker", "", "", "", "", "", "Zondag, na de klokwissel", "Utrecht", *tail[4:]],
        ["Terugbellen Özdemir", "2-11-2026", "14:30:00", "2-11-2026", "14:45:00", "Onwaar", "Onwaar", "", "",
         "Daan Visser", "", "", "", "", "", "", "Telefoon", *tail[4:]],
        ["Bezoek Müller", "31-11-2026", "11:00:00", "31-11-2026", "12:00:00", "Onwaar", "Onwaar", "", "",
         "Daan Visser", "", "", "", "", "", "31 november bestaat niet", "Haarlem", *tail[4:]],
    ]  # fmt: skip
    (d / "agenda.csv").write_bytes(codecs.BOM_UTF8 + _outlook(rows).encode())


def mac_roman_export() -> None:
    """Excel for Mac's 'CSV (Macintosh)': Mac Roman bytes (é is 0x8E, ü 0x9F, ø 0xBF, the
    en dash 0xD0) and CR line endings, a semicolon-free comma file from a French/German office."""
    d = case(
        "mac_roman_export",
        """\
version: 1
fields:
  externalId: {column: Ref, required: true}
  subject: Objet
  content: Remarques
  account.externalId: Client
  account.name: Société
""",
    )
    text = (
        "Ref,Objet,Remarques,Client,Société\r"
        "R-1,Visite – Genève,Café offert,K-1,Crème Brûlée SA\r"
        "R-2,Rendez-vous Müller,Prévoir 2 h,K-2,Jürgen Müller GmbH\r"
        "R-3,Appel Søren,Rappeler à 14 h,K-3,Smørrebrød ApS\r"
    )
    (d / "export.csv").write_bytes(text.encode("mac_roman"))


def tab_separated_xls() -> None:
    """What many older CRMs export as "Excel": tab-separated text named .xls (Excel opens it),
    here as Excel's own "Unicode Text" (UTF-16 LE with its byte-order mark, CRLF). Read as text
    with a note; a cell quoted for its tab inside; a bad date."""
    d = case(
        "tab_separated_xls",
        """\
version: 1
fields:
  externalId: {column: Activity No, required: true}
  subject: Subject
  content: Notes
  startTime: {column: Due, datetime: {format: "%Y-%m-%d %H:%M", timezone: Europe/London}}
  engagementType.name: Type
  engagementType.activityType: {column: Type, map: {Call: CALL, Meeting: MEETING, Visit: APPOINTMENT}}
  engagementUsers[0].externalId: {column: Owner Email, lower: true}
  engagementUsers[0].email: {column: Owner Email, lower: true}
""",
    )
    rows = [
        ["Activity No", "Subject", "Notes", "Due", "Type", "Owner Email"],
        ["000481", "Boiler service – Patel", '"bring part\tB-12"', "2026-11-03 09:00", "Visit", "Amy.Ng@heatco.co.uk"],
        ["000482", "Renewal call – O'Neill", "", "2026-11-03 14:15", "Call", "amy.ng@heatco.co.uk"],
        ["000483", "Survey – Kowalski", "leave at 12:30", "3rd Nov 10am", "Visit", "raj@heatco.co.uk"],
    ]  # fmt: skip
    text = "".join("\t".join(r) + "\r\n" for r in rows)
    (d / "activities.xls").write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))


def dynamics_hidden_id() -> None:
    """Dynamics 365's "Export to Excel": the record's id, a checksum and the modified time in
    hidden columns A-C ("(Do Not Modify) ..."), the visible columns after them, dates as real
    date cells in the user's zone (Chicago), a hidden sheet of option-set values, and a row whose
    owner is blank."""
    import datetime as dt

    d = case(
        "dynamics_hidden_id",
        """\
version: 1
description: Dynamics 365 appointments, Export to Excel
fields:
  externalId: {column: (Do Not Modify) Appointment, required: true}
  subject: Subject
  startTime: {column: Start Time, datetime: {timezone: America/Chicago, ambiguous: error}}
  endTime: {column: End Time, datetime: {timezone: America/Chicago, ambiguous: error}}
  remoteUpdatedAt: {column: (Do Not Modify) Modified On, datetime: {timezone: America/Chicago}}
  engagementType.name: {value: Appointment}
  engagementType.activityType: {value: APPOINTMENT}
  engagementUsers[0].externalId: Owner
  engagementUsers[0].name: Owner
  account.externalId: Regarding
  account.name: Regarding
""",
    )
    wb = Workbook()
    ws = wb.active
    ws.title = "Active Appointments"
    ws.append(["(Do Not Modify) Appointment", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On",
               "Subject", "Start Time", "End Time", "Owner", "Regarding"])  # fmt: skip
    rows = [
        ["6b1f0c1e-8f3a-4a8e-9a51-0c2f3b7d1a01", "AbCdEf1==", dt.datetime(2026, 11, 2, 16, 12), "Roof inspection - Lee",
         dt.datetime(2026, 11, 3, 9, 0), dt.datetime(2026, 11, 3, 10, 0), "Dana Whitfield", "Lee Household"],
        ["6b1f0c1e-8f3a-4a8e-9a51-0c2f3b7d1a02", "AbCdEf2==", dt.datetime(2026, 11, 3, 9, 41), "Virtual demo - Sato",
         dt.datetime(2026, 11, 4, 14, 30), dt.datetime(2026, 11, 4, 15, 15), "Marcus Ochoa", "Sato Household"],
        ["6b1f0c1e-8f3a-4a8e-9a51-0c2f3b7d1a03", "AbCdEf3==", dt.datetime(2026, 11, 4, 8, 0), "Follow-up - Brooks",
         dt.datetime(2026, 11, 5, 10, 0), dt.datetime(2026, 11, 5, 10, 30), None, "Brooks Household"],
    ]  # fmt: skip
    for r in rows:
        ws.append(r)
    for col in "ABC":
        ws.column_dimensions[col].hidden = True
    for col in "CEF":
        for cell in ws[col][1:]:
            cell.number_format = "m/d/yyyy h:mm AM/PM"
    hidden = wb.create_sheet("hiddenSheet")
    hidden.append(["Appointment", "Status"])
    hidden.append(["Open", "Completed"])
    hidden.sheet_state = "veryHidden"
    wb.save(d / "appointments.xlsx")


def main() -> None:
    for make in (
        eu_crm_export, ops_three_reps, salesforce_percents, damaged_utf8, cp1252_confirmed,
        us_amounts_ambiguous, hubspot_emails, handmade_bookings, outlook_calendar_en, outlook_calendar_nl,
        mac_roman_export, tab_separated_xls, dynamics_hidden_id,
    ):  # fmt: skip
        make()


if __name__ == "__main__":
    main()
