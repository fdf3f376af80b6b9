"""English: the reference catalog every other language follows key by key."""

from __future__ import annotations

from typing import Final

DECIMAL: Final = "."
MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
"""Month names as they follow a day number in a sentence ('12 Mar')."""
MONTHS_SHORT: Final = MONTHS
"""Month names under the chart's date ticks."""
WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

CATALOG: Final[dict[str, str]] = {
    # signal explanations
    "silence.missed": "{missed} check-ins in a row unanswered (since {since})",
    "silence.quiet": "No reply for {days} days, more than {cadences} check-in intervals",
    "silence.pattern": "Check-ins going quiet since {since}: of the last {window}, "
    "{missed} missed, and {late} answered much later than usual",
    "silence.rate": "Answered {answered} of the last {window} check-ins, "
    "down from {rate_before}% before",
    "slowing": "Replies now take a median {recent}, up from {base}",
    "low_alliance": "Alliance total {total}/{max}, below the cut-off of {cutoff}",
    "low_alliance.run": "Alliance total {total}/{max}, below the cut-off of {cutoff} "
    "for {in_row} check-ins in a row",
    "falling_alliance.baseline": "Alliance total {total}/{max}, {drop} points below "
    "the client's own baseline of {baseline}",
    "falling_alliance.sustained": "Alliance total {total}/{max}, {drop} points below "
    "the client's own baseline of {baseline}, for {sustained} check-ins in a row",
    "falling_alliance.trend": "Alliance total falling over the last {window} check-ins: "
    "{first} → {total}",
    "item_drop": "'{item}' ({domain}) at {value}/10, down from a usual {baseline}",
    "item_drop.low": "'{item}' ({domain}) at {value}/10",
    "partial": "{count} of the last {window} check-ins started but not finished",
    "partial.one": "The latest check-in was started but not finished",
    "terse.stopped": "No comments in the last {window} check-ins, after commenting on "
    "{rate_before}% of the first ones",
    "terse.shrinking": "Comments shrinking: {chars_recent} characters on average, "
    "down from {chars_before}",
    "ceiling": "Perfect scores on the last {in_row} check-ins and no comments: "
    "criticism may be hard to voice",
    "rupture_reported": "Reported tension or a misunderstanding with you on {since}, "
    "not talked through",
    "rupture_reported.repeated": "Reported tension or a misunderstanding with you "
    "{count} times recently, the latest on {since}, not talked through",
    "rupture_reported.resolved": "Reported tension or a misunderstanding with you on "
    "{since}, and says it was talked through",
    "confrontation": "A strongly negative comment about the therapy on {since}",
    "confrontation.repeated": "{count} strongly negative comments about the therapy "
    "recently, the latest on {since}",
    "paused": "Paused check-ins on {since}",
    "stopped": "Stopped check-ins on {since}",
    "unreachable": "Blocked the bot on {since}: messages no longer reach them",
    "together": "{text}, together with {others}",
    # short names, used when signals are combined
    "name.silence": "unanswered check-ins",
    "name.slowing": "slower replies",
    "name.low_alliance": "a low alliance rating",
    "name.falling_alliance": "a falling alliance rating",
    "name.item_drop": "a dropping item",
    "name.partial": "unfinished check-ins",
    "name.terse": "fewer words",
    "name.ceiling": "ceiling scores",
    "name.rupture_reported": "reported tension",
    "name.confrontation": "a negative comment",
    "name.paused": "a pause",
    "name.stopped": "stopping",
    "name.unreachable": "blocking the bot",
    "list.and": " and ",
    # item names
    "item.heard": "felt heard and respected",
    "item.goals": "worked on what I wanted",
    "item.approach": "the approach fits me",
    "item.overall": "overall",
    "domain.bond": "bond",
    "domain.goals": "goals",
    "domain.approach": "approach",
    "domain.overall": "overall",
    # durations and dates
    "minutes": "{n} minutes",
    "hours": "{n} hours",
    "hour": "1 hour",
    "days": "{n} days",
    "date.day_month": "{day} {month}",
    "date.weekday_day_time": "{weekday} {date}, {time}",
    # digest
    "digest.title": "Check-in digest: {alias}",
    "digest.session": "Session: {when}",
    "digest.no_session": "No session booked",
    "digest.counts": "Check-ins since the last session: {answered} of {sent} answered",
    "digest.counts.none": "No check-ins since the last session",
    "digest.all_well": "No signs of withdrawal: {answered} of {sent} check-ins answered, "
    "alliance steady at {total}/{max}",
    "digest.all_well.no_total": "No signs of withdrawal: {answered} of {sent} check-ins answered",
    "digest.too_little": "Too little data yet: {answered} check-in(s) answered so far",
    "digest.signals": "What stands out:",
    "digest.comments": "Comments:",
    "digest.comment": "{date}: “{comment}”",
    "digest.openings": "Possible openings:",
    "digest.alert": "ALERT",
    "digest.watch": "watch",
    "digest.info": "note",
    "digest.latest": "Latest alliance total: {total}/{max}",
    "digest.flagged": "Items at {flag} or below: {items}",
    "digest.flagged_item": "{item}",
    # openings, from rupture-repair practice
    "opening.silence": "Ask about practicalities and any mixed feelings about coming, "
    'without blame: "I noticed the check-ins went quiet; how has this been fitting '
    'into your week?"',
    "opening.metacommunication": "Invite a direct conversation about the relationship: "
    '"I have a sense something between us may have shifted; could we look at that '
    'together?"',
    "opening.goals": 'Revisit the goals together: "Are we still working on what matters '
    'most to you right now?"',
    "opening.rationale": "Give the rationale for the task or approach the client "
    "struggles with, and ask how well it fits them.",
    "opening.validate": "Acknowledge and validate the client's experience of what went "
    "wrong, and take your share of it without defending.",
    "opening.ceiling": 'Make criticism easy: "What is one thing I could do differently '
    'that would make this more useful?"',
    "opening.resume": "Ask whether the timing or the number of check-ins suits them, and "
    "whether the pause says something about the therapy.",
    # the chart
    "chart.title": "{alias}: alliance check-ins",
    "chart.total": "total /{max}",
    "chart.items": "items /{max}",
    "chart.cutoff": "cut-off {cutoff}",
    "chart.missed": "× missed",
    "chart.unfinished": "○ unfinished",
    "chart.empty": "No check-ins yet",
    "chart.item.heard": "heard",
    "chart.item.goals": "goals",
    "chart.item.approach": "approach",
    "chart.item.overall": "overall",
}
