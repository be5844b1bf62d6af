"""Regenerate example_data/engagements.csv and engagements.xlsx (deterministic).

    python example_data/generate.py

A generic CRM "appointments" export: 60 rows touching every part of SIRO's engagement body
(type, account with address/phones/emails/owner, two reps, opportunity, lead, contact with its
account), with a handful of rows that must come out invalid (their `Notes` say why).
The .xlsx holds the same rows with real Excel dates/times and numbers, as a CRM's Excel export would.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).parent
HEADERS = [
    "Appointment ID",
    "Subject",
    "Notes",
    "Direction",
    "Appointment Type",
    "Type ID",
    "Activity",
    "Start",
    "End",
    "Created",
    "Last Modified",
    "Deleted At",
    "Rep ID",
    "Rep Email",
    "Rep Name",
    "Rep Share",
    "Co-Rep ID",
    "Co-Rep Email",
    "Co-Rep Name",
    "Co-Rep Share",
    "Account ID",
    "Account Name",
    "Account Phone",
    "Account Email",
    "Account Owner ID",
    "Street",
    "City",
    "State",
    "Zip",
    "Country",
    "Latitude",
    "Longitude",
    "Opportunity ID",
    "Opportunity Name",
    "Amount",
    "Stage",
    "Close Date",
    "Lead ID",
    "Lead First Name",
    "Lead Last Name",
    "Lead Phone",
    "Lead Email",
    "Contact ID",
    "Contact Name",
    "Contact Phone",
    "Contact Email",
    "Contact Account ID",
]
REPS = [
    ("U-1001", "dana.whitfield@brightroof.com", "Dana Whitfield"),
    ("U-1002", "marcus.ochoa@brightroof.com", "Marcus Ochoa"),
    ("U-1003", "priya.raman@brightroof.com", "Priya Raman"),
    ("U-1004", "tom.becker@brightroof.com", "Tom Becker"),
]
PLACES = [
    ("1420 W Addison St", "Chicago", "IL", "60613", 41.9470, -87.6650),
    ("88 Prospect Ave", "Evanston", "IL", "60201", 42.0450, -87.6877),
    ("310 Beacon St", "Boston", "MA", "02134", 42.3550, -71.0700),
    ("2211 Elm St", "Dallas", "TX", "75201", 32.7817, -96.7970),
    ("75 Harbor Rd", "Milwaukee", "WI", "53202", 43.0389, -87.9065),
    ("19 Oak Ln", "Naperville", "IL", "60540", 41.7508, -88.1535),
]
FIRST = ["Ann", "Luis", "Grace", "Omar", "Beth", "Kenji", "Nora", "Felix", "Ivy", "Raj", "Zoe", "Hank"]
LAST = [
    "Lee",
    "Garcia",
    "Kim",
    "Haddad",
    "Novak",
    "Sato",
    "Quinn",
    "Moreau",
    "Chen",
    "Patel",
    "Brooks",
    "Ford",
]
TYPES = [
    ("In-home consultation", "T-10", "Appointment"),
    ("Virtual demo", "T-20", "Meeting"),
    ("Follow-up call", "T-30", "Call"),
    ("Roof inspection", "T-40", "Site Visit"),
]
STAGES = ["Open", "Closed Won", "Closed Lost", "Negotiation"]


def rows() -> list[dict[str, object]]:
    rng = random.Random(20260613)
    out: list[dict[str, object]] = []
    base = dt.datetime(2026, 3, 2, 8, 0)
    for i in range(60):
        first, last = FIRST[i % 12], LAST[(i * 5) % 12]
        street, city, state, zip_, lat, lon = PLACES[i % len(PLACES)]
        tname, tid, activity = TYPES[i % len(TYPES)]
        rep = REPS[i % 4]
        co = REPS[(i + 1) % 4] if i % 3 == 0 else None
        start = base + dt.timedelta(days=i * 2, hours=(i % 8))
        end = start + dt.timedelta(minutes=(60 if i % 2 else 90))
        created = start - dt.timedelta(days=7, hours=3)
        modified = start - dt.timedelta(days=1)
        stage = STAGES[i % 4]
        amount = round(rng.uniform(4000, 48000), 2)
        row: dict[str, object] = {
            "Appointment ID": f"APT-{24001 + i}",
            "Subject": f"{tname} - {first} {last}",
            "Notes": f"{first} asked about {'financing' if i % 2 else 'warranty'}; gate code {1000 + i}.",
            "Direction": "Outbound" if i % 3 else "Inbound",
            "Appointment Type": tname,
            "Type ID": tid,
            "Activity": activity,
            "Start": start,
            "End": end,
            "Created": created,
            "Last Modified": modified,
            "Deleted At": (start + dt.timedelta(days=1)) if i == 17 else None,
            "Rep ID": rep[0],
            "Rep Email": rep[1],
            "Rep Name": rep[2],
            "Rep Share": 0.5 if co else 1,
            "Co-Rep ID": co[0] if co else None,
            "Co-Rep Email": co[1] if co else None,
            "Co-Rep Name": co[2] if co else None,
            "Co-Rep Share": 0.5 if co else None,
            "Account ID": f"ACC-{5100 + i % 40}",
            "Account Name": f"{last} Household",
            "Account Phone": f"(312) 555-{1000 + i:04d}",
            "Account Email": f"{first.lower()}.{last.lower()}@example.com",
            "Account Owner ID": rep[0] if i % 5 else None,
            "Street": street,
            "City": city,
            "State": state,
            "Zip": zip_,
            "Country": "US",
            "Latitude": lat,
            "Longitude": lon,
            "Opportunity ID": f"OPP-{7700 + i}" if i % 4 != 3 else None,
            "Opportunity Name": f"{last} re-roof" if i % 4 != 3 else None,
            "Amount": amount if i % 4 != 3 else None,
            "Stage": stage if i % 4 != 3 else None,
            "Close Date": (start + dt.timedelta(days=30)).date() if stage.startswith("Closed") else None,
            "Lead ID": f"L-{900 + i}" if i % 2 == 0 else None,
            "Lead First Name": first if i % 2 == 0 else None,
            "Lead Last Name": last if i % 2 == 0 else None,
            "Lead Phone": f"+1 773 555 {2000 + i:04d}" if i % 2 == 0 else None,
            "Lead Email": f"{first.lower()}{i}@mail.example.net" if i % 2 == 0 else None,
            "Contact ID": f"C-{3300 + i}",
            "Contact Name": f"{first} {last}",
            "Contact Phone": f"(773) 555-{3000 + i:04d}",
            "Contact Email": f"{first.lower()}.{last.lower()}@example.com",
            "Contact Account ID": f"ACC-{5100 + i % 40}",
        }
        out.append(row)
    # Rows that must come out invalid; the Notes say why.
    out[7]["Appointment ID"] = None
    out[7]["Notes"] = "INVALID: no Appointment ID (externalId is required)"
    out[15]["Start"] = "31/02/2026 10:00 AM"
    out[15]["Notes"] = "INVALID: start date is not a real date in the file's format"
    out[23]["Activity"] = "Webinar"
    out[23]["Notes"] = "INVALID: activity 'Webinar' is not mapped to a SIRO activity type"
    out[31]["End"] = dt.datetime(2026, 3, 8, 2, 30)
    out[31]["Notes"] = "INVALID: end time 03/08/2026 02:30 AM does not exist in Chicago (DST starts)"
    out[44]["Amount"] = "12k"
    out[44]["Notes"] = "INVALID: amount is not a number"
    return out


def csv_text(value: object) -> str:
    """How a CRM writes the value into a CSV export (US formats)."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%m/%d/%Y %I:%M %p")
    if isinstance(value, dt.date):
        return value.strftime("%m/%d/%Y")
    return str(value)


def main() -> None:
    data = rows()
    with (HERE / "engagements.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADERS)
        for row in data:
            w.writerow([csv_text(row[h]) for h in HEADERS])

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Appointments"
    ws.append(HEADERS)
    for row in data:
        ws.append([row[h] for h in HEADERS])
    for cells in ws.iter_rows(min_row=2):
        for cell in cells:
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "mm/dd/yyyy h:mm AM/PM"
            elif isinstance(cell.value, dt.date):
                cell.number_format = "mm/dd/yyyy"
            elif HEADERS[cell.column - 1] == "Zip":
                cell.number_format = "@"  # text: keeps leading zeros
    wb.properties.creator = "bulk_sync example generator"
    wb.properties.created = dt.datetime(2026, 11, 1)
    wb.properties.modified = dt.datetime(2026, 11, 1)
    wb.save(HERE / "engagements.xlsx")


if __name__ == "__main__":
    main()
