"""Deterministic generator for the ``policy-qa`` suite (questions on Lumora's customer policy handbook).

Run ``python suites/policy-qa/make_data.py [OUT_DIR]`` from anywhere; it (re)writes, under OUT_DIR
(default: the folder of this script):

- knowledge/<topic>.md   the handbook as it stands today (version 3), one document per policy topic;
- history/handbook-v1.md, history/handbook-v2.md and history/CHANGES.md: the superseded versions and
  what changed, kept for the reader and never indexed (they are not under knowledge/);
- data/train.jsonl       questions answered from version 1 (the answers a team collected last quarter);
- data/eval.jsonl        other phrasings of the same questions, answered from version 3 (today's facts);
- fake/stale_oracle.jsonl a canned "model" that knows version 1 perfectly: what a fine-tune on the train
  split would say at best.

Standard library only, seeded with random.Random(SEED); the output is byte-identical across runs and
does not depend on PYTHONHASHSEED.

Every fact has a value in each version. Train and eval ask about the same facts with disjoint phrasings
(three train phrasings, two eval ones per fact), so no eval question repeats a train one, and the only
thing a model needs to get an eval item right is the fact as version 3 states it.

Answers are short: a number in digits without unit or currency sign (the question names the unit),
yes or no, a date as YYYY-MM-DD, or a short phrase the handbook uses.
"""

from __future__ import annotations

import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

SEED = 20260105
HERE = Path(__file__).resolve().parent
VERSIONS = ("v1", "v2", "v3")
EFFECTIVE = {"v1": "2025-11-01", "v2": "2025-12-01", "v3": "2026-01-01"}
TRAIN_VERSION, EVAL_VERSION = "v1", "v3"
N_EVAL = 150


@dataclass(frozen=True)
class Fact:
    doc: str  # the knowledge document that states it
    key: str
    kind: str  # number | yesno | date | phrase
    values: tuple[str, str, str]  # v1, v2, v3
    statement: str | tuple[str, str]  # the handbook's line, {v} = the value; yes/no facts: (if yes, if no)
    train: tuple[str, str, str]  # question phrasings used for train items only
    eval: tuple[str, str]  # question phrasings used for eval items only

    def line(self, version: str) -> str:
        value = self.values[VERSIONS.index(version)]
        if isinstance(self.statement, tuple):
            return self.statement[0] if value == "yes" else self.statement[1]
        return self.statement.format(v=value)


# --- returns and warranty, one document per product category ---------------------------------------------
# slug, singular, plural, products
CATEGORIES = [
    ("routers", "router", "routers", ["Arc R5", "Arc R7", "Arc R9 Pro"]),
    ("mesh", "mesh system", "mesh Wi-Fi systems", ["Mesh X2", "Mesh X3", "Mesh X5"]),
    ("cameras", "camera", "security cameras", ["Eye C1", "Eye C4 Outdoor", "Eye C8 Pan"]),
    ("plugs", "smart plug", "smart plugs", ["Spark Plug", "Spark Plug Duo", "Spark Outdoor Plug"]),
    ("thermostats", "thermostat", "smart thermostats", ["Climate T1 Lite", "Climate T2", "Climate T3 Smart"]),
    ("doorbells", "doorbell", "video doorbells", ["Chime D1", "Chime D2 Battery", "Chime D3 Pro"]),
    ("hubs", "hub", "smart-home hubs", ["Nexus H1", "Nexus H2", "Nexus Mini"]),
    ("extenders", "extender", "Wi-Fi range extenders", ["Reach E1", "Reach E3", "Reach E5"]),
]
# key, kind, statement, train phrasings, eval phrasings, values per category slug (v1, v2, v3).
# {one}/{many}: the category's singular/plural; {thing}: "Lumora <one>" or "Lumora <product> <one>".
CATEGORY_FACTS = [
    (
        "return_days",
        "number",
        "Return window: {many} can be returned for a full refund within {v} days of delivery.",
        (
            "How many days do I have to return a {thing}?",
            "What is the return window for {many}, in days?",
            "Within how many days of delivery can a {thing} be sent back for a refund?",
        ),
        (
            "I got my new {thing} delivered and I don't like it. How many days do I have to send it back?",
            "Return period for {many} bought from Lumora: how many days?",
        ),
        {
            "routers": ("30", "30", "30"),
            "mesh": ("30", "30", "21"),
            "cameras": ("30", "21", "14"),
            "plugs": ("30", "21", "14"),
            "thermostats": ("45", "45", "30"),
            "doorbells": ("30", "30", "30"),
            "hubs": ("30", "21", "21"),
            "extenders": ("30", "30", "14"),
        },
    ),
    (
        "restocking_pct",
        "number",
        "Restocking fee: an opened {one} that is returned is refunded less a {v}% restocking fee; unopened ones "
        "carry none.",
        (
            "What percent restocking fee is charged when I return an opened {thing}?",
            "What is the restocking fee for opened {many}, as a percentage?",
            "If I send back a {thing} I already unboxed, what percentage is deducted as a restocking fee?",
        ),
        (
            "I opened my {thing} and now want a refund. What percentage of the price does Lumora keep?",
            "Restocking fee on returning an opened {one}: how many percent?",
        ),
        {
            "routers": ("0", "10", "10"),
            "mesh": ("15", "15", "10"),
            "cameras": ("5", "5", "5"),
            "plugs": ("0", "0", "0"),
            "thermostats": ("15", "15", "15"),
            "doorbells": ("15", "15", "15"),
            "hubs": ("0", "0", "0"),
            "extenders": ("10", "10", "0"),
        },
    ),
    (
        "warranty_months",
        "number",
        "Standard warranty: {v} months from delivery, parts and labour.",
        (
            "How many months is the standard warranty on a {thing}?",
            "What is the warranty length for {many}, in months?",
            "For how many months are {many} covered by the standard warranty?",
        ),
        (
            "My {thing} stopped working. How many months from delivery does the standard warranty cover it?",
            "Standard Lumora warranty on a {one}: how long in months?",
        ),
        {
            "routers": ("12", "24", "24"),
            "mesh": ("36", "36", "36"),
            "cameras": ("12", "12", "24"),
            "plugs": ("12", "12", "12"),
            "thermostats": ("24", "24", "24"),
            "doorbells": ("12", "24", "24"),
            "hubs": ("24", "24", "24"),
            "extenders": ("12", "12", "12"),
        },
    ),
    (
        "advance_replacement",
        "yesno",
        (
            "Advance replacement: available. Lumora ships the replacement {one} before the faulty one is returned.",
            "Advance replacement: not available. The faulty {one} must reach Lumora before a replacement ships.",
        ),
        (
            "Does Lumora ship a replacement {thing} before I send back the faulty one?",
            "Is advance replacement available for {many} under warranty?",
            "Can I get an advance replacement for a broken {thing}?",
        ),
        (
            "My {thing} failed under warranty. Will the new one be sent before Lumora receives the broken one?",
            "Are {many} eligible for advance replacement?",
        ),
        {
            "routers": ("no", "yes", "yes"),
            "mesh": ("yes", "yes", "yes"),
            "cameras": ("no", "no", "yes"),
            "plugs": ("no", "no", "no"),
            "thermostats": ("yes", "yes", "no"),
            "doorbells": ("no", "yes", "yes"),
            "hubs": ("no", "no", "no"),
            "extenders": ("no", "yes", "no"),
        },
    ),
]

# --- camera subscription plans, one document each -----------------------------------------------------------
PLANS = [("basic", "Lumora Secure Basic"), ("plus", "Lumora Secure Plus"), ("pro", "Lumora Secure Pro")]
PLAN_FACTS = [
    (
        "monthly_price",
        "number",
        "Price: ${v} per month, billed monthly.",
        (
            "How much does {plan} cost per month, in US dollars?",
            "What is the monthly price of the {plan} subscription in dollars?",
            "{plan} monthly fee in USD?",
        ),
        (
            "I'd like to subscribe to {plan}. What will I pay each month, in US dollars?",
            "Per month, how many dollars is a {plan} plan?",
        ),
        {"basic": ("3.99", "3.99", "4.99"), "plus": ("9.99", "10.99", "10.99"), "pro": ("19.99", "19.99", "24.99")},
    ),
    (
        "history_days",
        "number",
        "Cloud video history: recordings are kept for {v} days.",
        (
            "How many days of cloud video history does {plan} keep?",
            "For how many days are recordings stored on {plan}?",
            "What is the video history length on the {plan} plan, in days?",
        ),
        (
            "With {plan}, how far back (in days) can I watch my recorded clips?",
            "Cloud recordings on {plan} are kept for how many days?",
        ),
        {"basic": ("7", "7", "7"), "plus": ("30", "30", "60"), "pro": ("90", "90", "90")},
    ),
    (
        "max_cameras",
        "number",
        "Cameras covered: up to {v} cameras on one subscription.",
        (
            "How many cameras does one {plan} subscription cover?",
            "What is the maximum number of cameras on {plan}?",
            "Up to how many cameras can be added to a {plan} plan?",
        ),
        (
            "I have several Lumora cameras. How many of them can a single {plan} account include?",
            "Camera limit for {plan}?",
        ),
        {"basic": ("1", "1", "2"), "plus": ("5", "5", "5"), "pro": ("10", "15", "20")},
    ),
    (
        "trial_days",
        "number",
        "Free trial: {v} days for new subscribers, once per household.",
        (
            "How long is the free trial of {plan}, in days?",
            "How many free trial days come with {plan}?",
            "What is the length of the {plan} free trial in days?",
        ),
        (
            "If I start {plan} today, how many days can I use it before the first charge?",
            "{plan}: number of days in the free trial?",
        ),
        {"basic": ("14", "14", "14"), "plus": ("30", "14", "14"), "pro": ("30", "30", "30")},
    ),
    (
        "includes_care",
        "yesno",
        (
            "Lumora Care extended warranty: included at no extra cost for every covered device.",
            "Lumora Care extended warranty: not included; it can be bought separately.",
        ),
        (
            "Does {plan} include the Lumora Care extended warranty?",
            "Is Lumora Care part of the {plan} subscription?",
            "Do {plan} subscribers get Lumora Care at no extra cost?",
        ),
        (
            "I pay for {plan}. Are my devices covered by Lumora Care without buying it separately?",
            "Is Lumora Care included with a {plan} plan?",
        ),
        {"basic": ("no", "no", "no"), "plus": ("no", "yes", "no"), "pro": ("yes", "yes", "yes")},
    ),
]

# --- one document per remaining topic: id -> (title, scope sentence) ------------------------------------
TOPICS = {
    "shipping": ("Shipping", "How orders from the Lumora online store are delivered within the US."),
    "refunds": ("Refunds", "How money comes back once a return has been accepted."),
    "price-match": ("Price match", "When Lumora refunds the difference after a lower price is found."),
    "trade-in": ("Trade-in programme", "Credit for old networking devices traded in toward new Lumora hardware."),
    "student-discount": ("Student discount", "Savings for students enrolled at an accredited college or university."),
    "support": ("Customer support", "How and when customers can reach Lumora support."),
    "lumora-care": ("Lumora Care", "Lumora Care is the paid extended-warranty plan, sold per device."),
    "business": ("Business accounts", "Accounts for companies that run Lumora devices at their premises."),
    "installation": ("Installation service", "Professional in-home setup of Lumora devices by a technician."),
    "referral": ("Referral programme", "Rewards for recommending Lumora to friends with a personal link."),
    "late-delivery": ("Late delivery", "Compensation when an order arrives after the promised delivery date."),
    "privacy": ("Account data and privacy", "What happens to account data and recordings, and how to get a copy."),
    "promotions": ("Promotions", "Time-limited offers and how they combine with other discounts."),
    "payments": ("Payments", "Ways to pay at checkout, including the installment plan."),
    "warranty-claims": ("Warranty claims", "How to claim under the standard warranty for any Lumora device."),
}
# doc, key, kind, (v1, v2, v3), statement, train phrasings, eval phrasings
TOPIC_FACTS = [
    (
        "shipping",
        "standard_fee",
        "number",
        ("5.99", "6.99", "6.99"),
        "Standard shipping costs ${v} per order.",
        (
            "How much is standard shipping on a Lumora order, in US dollars?",
            "What does Lumora charge for standard shipping (USD)?",
            "Standard delivery fee per order in dollars?",
        ),
        (
            "My basket is small. What will standard shipping add to the order, in US dollars?",
            "What is the price of standard shipping for one order, in dollars?",
        ),
    ),
    (
        "shipping",
        "free_threshold",
        "number",
        ("50", "75", "99"),
        "Orders of ${v} or more ship free with standard shipping.",
        (
            "What is the minimum order value for free shipping, in dollars?",
            "Above how many dollars does standard shipping become free?",
            "How much do I need to spend to get free shipping (USD)?",
        ),
        (
            "How big does my order have to be, in US dollars, before Lumora waives the shipping fee?",
            "Free standard shipping starts at what order total in dollars?",
        ),
    ),
    (
        "shipping",
        "standard_days",
        "number",
        ("4", "4", "4"),
        "Standard shipping arrives within {v} business days of dispatch.",
        (
            "How many business days does standard shipping take?",
            "What is the delivery time for standard shipping, in business days?",
            "Within how many business days should a standard shipment arrive?",
        ),
        (
            "I chose standard shipping at checkout. How many business days until it gets here?",
            "Standard shipping delivery estimate: how many business days?",
        ),
    ),
    (
        "shipping",
        "express_fee",
        "number",
        ("14.99", "14.99", "19.99"),
        "Express shipping costs ${v} per order and arrives in 1-2 business days.",
        (
            "How much does express shipping cost in US dollars?",
            "What is the express delivery fee per order, in dollars?",
            "Express shipping price (USD)?",
        ),
        (
            "I need it fast. What does express shipping cost me, in US dollars?",
            "What does Lumora charge per order for express delivery, in dollars?",
        ),
    ),
    (
        "refunds",
        "processing_days",
        "number",
        ("10", "7", "5"),
        "Refunds are issued within {v} business days after the returned item reaches the warehouse.",
        (
            "How many business days does Lumora take to issue a refund after receiving a return?",
            "Refund processing time after the return arrives, in business days?",
            "Within how many business days is a refund sent once my return is received?",
        ),
        (
            "Lumora got my returned package yesterday. Within how many business days should I see the money?",
            "How long, in business days, does a refund take after the warehouse receives the item?",
        ),
    ),
    (
        "refunds",
        "gift_refund",
        "phrase",
        ("store credit", "store credit", "Lumora gift card"),
        "Refund method for items bought as gifts: {v} (never the buyer's card).",
        (
            "How are returns of gifted items refunded?",
            "What form does the refund take for an item received as a gift?",
            "If I return a present someone bought me, what kind of refund do I get?",
        ),
        (
            "Someone gave me a Lumora camera as a gift and I want to return it. What do I get back?",
            "What is the refund method for gift returns?",
        ),
    ),
    (
        "refunds",
        "shipping_refunded",
        "yesno",
        ("no", "no", "yes"),
        (
            "The original shipping fee is refunded when a whole order is returned.",
            "The original shipping fee is not refunded when an order is returned.",
        ),
        (
            "Is the original shipping fee refunded when I return an order?",
            "Do I get my shipping cost back on a return?",
            "Does Lumora refund the shipping charge for returned orders?",
        ),
        (
            "I paid for shipping and am now returning everything. Will that fee be paid back too?",
            "Are original shipping charges included in a return refund?",
        ),
    ),
    (
        "price-match",
        "window_days",
        "number",
        ("14", "30", "30"),
        "If the price drops within {v} days of purchase, Lumora refunds the difference.",
        (
            "Within how many days of purchase does Lumora match a lower price?",
            "How many days is the price-match window?",
            "For how many days after buying can I claim a price match?",
        ),
        (
            "I bought a router and now it's cheaper elsewhere. How many days after my purchase can I still ask?",
            "The price match period lasts how many days from purchase?",
        ),
    ),
    (
        "price-match",
        "marketplace",
        "yesno",
        ("yes", "no", "no"),
        (
            "Prices from marketplace sellers are eligible for a price match.",
            "Prices from third-party marketplace sellers are not eligible for a price match; only authorised "
            "retailers count.",
        ),
        (
            "Does Lumora price-match marketplace sellers?",
            "Are third-party marketplace prices eligible for a price match?",
            "Can I get a price match against a marketplace seller's listing?",
        ),
        (
            "I found a lower price from a third-party seller on a marketplace. Will Lumora match it?",
            "Is a marketplace seller's price accepted for price matching?",
        ),
    ),
    (
        "price-match",
        "max_claims",
        "number",
        ("3", "3", "3"),
        "One customer can make at most {v} price-match claims per calendar year.",
        (
            "How many price-match claims can one customer make per year?",
            "What is the yearly limit on price-match requests?",
            "Maximum number of price-match claims per calendar year?",
        ),
        (
            "I've already asked for a few price matches this year. How many am I allowed in total?",
            "Per year, how many price-match claims does Lumora accept from one customer?",
        ),
    ),
    (
        "trade-in",
        "router_credit",
        "number",
        ("40", "50", "30"),
        "Trading in a working router of any brand earns ${v} toward a new Lumora router.",
        (
            "How much trade-in credit, in dollars, do I get for an old router?",
            "What is the trade-in value of a used router in US dollars?",
            "Dollar credit for trading in an old router?",
        ),
        (
            "I want to swap my old router for a new Lumora one. How many dollars will the trade-in give me?",
            "How much is a router trade-in worth toward a new Lumora router, in dollars?",
        ),
    ),
    (
        "trade-in",
        "max_age_years",
        "number",
        ("7", "7", "7"),
        "Devices up to {v} years old are accepted for trade-in.",
        (
            "What is the maximum age of a device accepted for trade-in, in years?",
            "How old, in years, can a trade-in device be?",
            "Up to how many years old are trade-in devices accepted?",
        ),
        (
            "My old router is quite old. Up to what age in years will Lumora still take it?",
            "The trade-in programme takes devices no older than how many years?",
        ),
    ),
    (
        "trade-in",
        "credit_form",
        "phrase",
        ("store credit", "instant discount", "instant discount"),
        "Trade-in value is paid out as: {v}.",
        (
            "In what form is trade-in credit given?",
            "How is the trade-in value paid out?",
            "What do I receive for a trade-in: what form of credit?",
        ),
        (
            "When I trade in my old device, how does Lumora give me its value?",
            "Trade-in credit comes as what?",
        ),
    ),
    (
        "student-discount",
        "percent",
        "number",
        ("10", "15", "15"),
        "Verified students get {v}% off hardware.",
        (
            "What percentage discount do students get?",
            "How much is the Lumora student discount, in percent?",
            "Student discount rate (%)?",
        ),
        (
            "I'm a university student. How many percent off do I get at Lumora?",
            "What percent off is the student discount?",
        ),
    ),
    (
        "student-discount",
        "max_orders",
        "number",
        ("3", "3", "2"),
        "The student discount applies to at most {v} orders per year.",
        (
            "How many orders per year can use the student discount?",
            "What is the annual limit of student-discount orders?",
            "Student discount: maximum orders per year?",
        ),
        (
            "I used my student discount once already this year. How many discounted orders do I get in total?",
            "Per year, how many orders may a student apply the discount to?",
        ),
    ),
    (
        "student-discount",
        "verification",
        "phrase",
        ("CampusCard", "CampusCard", "StudentPass"),
        "Student status is verified through {v}.",
        (
            "Which service verifies student status for the discount?",
            "What service does Lumora use to check that I am a student?",
            "Student verification is done through which service?",
        ),
        (
            "To get the student price, where do I prove I'm a student?",
            "Name the service Lumora uses to verify students.",
        ),
    ),
    (
        "support",
        "phone_days",
        "number",
        ("5", "6", "7"),
        "Phone support is open {v} days a week, 8 am to 8 pm Eastern.",
        (
            "How many days a week is phone support open?",
            "On how many days per week can I call Lumora support?",
            "Phone support availability: days per week?",
        ),
        (
            "Can I call support at the weekend? How many days each week are the phone lines open?",
            "How many days per week does Lumora staff its phone support?",
        ),
    ),
    (
        "support",
        "chat_247",
        "yesno",
        ("no", "yes", "yes"),
        ("Live chat is open 24/7.", "Live chat is open during phone-support hours only."),
        (
            "Is live chat support available 24/7?",
            "Does Lumora offer round-the-clock chat support?",
            "Can I reach chat support at any hour of the day?",
        ),
        (
            "It's 3 a.m. and my Wi-Fi is down. Is Lumora's live chat open at all hours?",
            "Is chat support open 24 hours a day, 7 days a week?",
        ),
    ),
    (
        "support",
        "callback_minutes",
        "number",
        ("15", "15", "15"),
        "A requested callback is promised within {v} minutes during opening hours.",
        (
            "Within how many minutes does Lumora promise a support callback?",
            "What is the callback time target, in minutes?",
            "How many minutes until a requested callback?",
        ),
        (
            "I asked support to call me back. How many minutes should I expect to wait at most?",
            "The promised support callback time is how many minutes?",
        ),
    ),
    (
        "lumora-care",
        "annual_price",
        "number",
        ("49", "59", "59"),
        "Lumora Care costs ${v} per device per year.",
        (
            "How much does Lumora Care cost per year, in US dollars?",
            "What is the annual price of Lumora Care in dollars?",
            "Lumora Care yearly fee (USD)?",
        ),
        (
            "I'd like to add Lumora Care. How many dollars does it cost for one year?",
            "What does a year of Lumora Care cost, in US dollars?",
        ),
    ),
    (
        "lumora-care",
        "deductible",
        "number",
        ("29", "29", "19"),
        "Each claim has a ${v} deductible.",
        (
            "What is the deductible per Lumora Care claim, in dollars?",
            "How much do I pay per Lumora Care claim (USD)?",
            "Lumora Care claim deductible in US dollars?",
        ),
        (
            "My device broke and I have Lumora Care. How many dollars do I pay to make a claim?",
            "What does each Lumora Care claim cost me in dollars?",
        ),
    ),
    (
        "lumora-care",
        "claims_per_year",
        "number",
        ("3", "2", "3"),
        "Up to {v} claims per device per year are covered.",
        (
            "How many Lumora Care claims are allowed per year?",
            "What is the annual claim limit of Lumora Care?",
            "Maximum Lumora Care claims in twelve months?",
        ),
        (
            "I already claimed once on Lumora Care this year. How many claims can I make in total?",
            "Per year, how many claims does Lumora Care cover?",
        ),
    ),
    (
        "lumora-care",
        "accidental",
        "yesno",
        ("no", "yes", "yes"),
        (
            "Accidental damage (drops, spills, cracked housings) is covered.",
            "Accidental damage (drops, spills, cracked housings) is not covered; only defects are.",
        ),
        (
            "Does Lumora Care cover accidental damage?",
            "Is accidental damage included in Lumora Care?",
            "Will Lumora Care pay for a device I dropped and broke?",
        ),
        (
            "I knocked my camera off the shelf and it cracked. Does my extended warranty plan pay for that?",
            "Are accidents such as drops and spills covered by Lumora Care?",
        ),
    ),
    (
        "business",
        "min_devices",
        "number",
        ("10", "10", "5"),
        "A business account needs at least {v} Lumora devices at the company's premises.",
        (
            "How many devices are needed to open a business account?",
            "What is the minimum device count for a Lumora business account?",
            "Business accounts require at least how many devices?",
        ),
        (
            "We run a small office. How many Lumora devices must we have to qualify for a company account?",
            "The minimum number of devices for a business account is?",
        ),
    ),
    (
        "business",
        "net_days",
        "number",
        ("45", "45", "45"),
        "Business invoices are payable within {v} days of the invoice date.",
        (
            "What are the payment terms for business invoices, in days?",
            "Within how many days must a business account pay an invoice?",
            "Business invoice due period (days)?",
        ),
        (
            "Our company got a Lumora invoice. How many days do we have to pay it?",
            "How many days are the net payment terms on a business account?",
        ),
    ),
    (
        "business",
        "manager_threshold",
        "number",
        ("100", "100", "50"),
        "Accounts with {v} or more devices get a dedicated account manager.",
        (
            "How many devices does a business need for a dedicated account manager?",
            "From what device count is a dedicated account manager assigned?",
            "Account manager threshold, in number of devices?",
        ),
        (
            "We're growing our fleet of Lumora devices. At how many devices do we get our own contact person?",
            "What device count qualifies a business for a dedicated account manager?",
        ),
    ),
    (
        "installation",
        "install_price",
        "number",
        ("99", "99", "129"),
        "In-home installation of one device costs ${v}, each further device at the same visit $30.",
        (
            "How much does in-home installation of one device cost, in US dollars?",
            "What is the price of Lumora's in-home installation service (USD)?",
            "In-home setup fee for a single device in dollars?",
        ),
        (
            "I'd rather have a technician set up my doorbell at home. What does that cost in US dollars?",
            "How many dollars is professional in-home installation for one device?",
        ),
    ),
    (
        "installation",
        "cancel_hours",
        "number",
        ("48", "48", "48"),
        "Cancel at least {v} hours before the appointment for a full refund.",
        (
            "How many hours before an installation appointment must I cancel to get a full refund?",
            "What is the cancellation notice for installation visits, in hours?",
            "Installation cancellation deadline, hours before the visit?",
        ),
        (
            "Something came up and I need to cancel my technician visit. How many hours ahead must I cancel?",
            "To cancel an installation without losing the fee, how many hours' notice is needed?",
        ),
    ),
    (
        "installation",
        "weekend",
        "yesno",
        ("no", "no", "yes"),
        ("Appointments are available Monday to Sunday.", "Appointments are available Monday to Friday only."),
        (
            "Can installation appointments be booked on weekends?",
            "Does Lumora offer weekend installation visits?",
            "Are Saturday or Sunday installation slots available?",
        ),
        (
            "I work weekdays. Could the technician come on a Saturday?",
            "Is weekend installation offered?",
        ),
    ),
    (
        "referral",
        "referrer_credit",
        "number",
        ("20", "25", "15"),
        "The referrer earns ${v} in store credit for each friend who buys through the link.",
        (
            "How much credit, in dollars, do I get for referring a friend?",
            "What is the referral reward for the referrer in US dollars?",
            "Referral bonus per friend (USD)?",
        ),
        (
            "My neighbour bought a Lumora router using my link. How many dollars of credit do I earn?",
            "For each successful referral, the referrer receives how many dollars?",
        ),
    ),
    (
        "referral",
        "friend_pct",
        "number",
        ("15", "15", "15"),
        "The referred friend gets {v}% off their first order.",
        (
            "What percentage discount does a referred friend get?",
            "How many percent off is the referred customer's first order?",
            "Referral discount for the new customer, in percent?",
        ),
        (
            "My friend sent me a referral link. What percentage do I save on my first order?",
            "A referred new customer gets what percent off?",
        ),
    ),
    (
        "referral",
        "max_referrals",
        "number",
        ("10", "5", "5"),
        "At most {v} referrals per calendar year are rewarded.",
        (
            "How many referral rewards can I earn per year?",
            "What is the yearly cap on referrals?",
            "Maximum number of rewarded referrals per year?",
        ),
        (
            "I keep recommending Lumora to friends. How many of them per year will actually earn me credit?",
            "Per calendar year, referral rewards are capped at how many?",
        ),
    ),
    (
        "late-delivery",
        "days_late",
        "number",
        ("3", "3", "2"),
        "An order that arrives more than {v} business days after the promised date qualifies for a credit.",
        (
            "How many business days late must an order be to qualify for a late-delivery credit?",
            "After how many business days past the promised date does the late-delivery credit apply?",
            "Late-delivery credit threshold in business days?",
        ),
        (
            "My package is overdue. How many business days past the promised date before I can claim compensation?",
            "An order counts as late for compensation after how many business days?",
        ),
    ),
    (
        "late-delivery",
        "credit",
        "number",
        ("15", "15", "15"),
        "The late-delivery credit is ${v}, added to the account automatically.",
        (
            "How much is the late-delivery credit, in US dollars?",
            "What compensation in dollars does Lumora give for a late order?",
            "Late delivery credit amount (USD)?",
        ),
        (
            "My order came a week late. How many dollars will Lumora credit me?",
            "The credit for a late delivery is worth how many dollars?",
        ),
    ),
    (
        "privacy",
        "deletion_days",
        "number",
        ("30", "30", "14"),
        "An account is deleted within {v} days of a deletion request.",
        (
            "Within how many days is an account deleted after a deletion request?",
            "How many days does account deletion take?",
            "Account deletion period after request, in days?",
        ),
        (
            "I asked Lumora to delete my account. How many days until it's gone?",
            "After I request deletion, my data is erased within how many days?",
        ),
    ),
    (
        "privacy",
        "clips_after_cancel",
        "number",
        ("30", "14", "7"),
        "Recorded clips stay available for {v} days after a subscription is cancelled.",
        (
            "How many days are video clips kept after I cancel my subscription?",
            "After cancellation, for how many days can I still download my recordings?",
            "Clip retention after subscription cancellation, in days?",
        ),
        (
            "I'm cancelling my camera plan. How many days will I still have to save my recordings?",
            "Once a subscription ends, recorded clips are deleted after how many days?",
        ),
    ),
    (
        "privacy",
        "export_format",
        "phrase",
        ("CSV", "JSON", "JSON"),
        "A copy of all account data can be downloaded as a {v} file from the account page.",
        (
            "In what file format can I export my account data?",
            "What format does the Lumora data export use?",
            "Account data download format?",
        ),
        (
            "I want a copy of all my Lumora account data. Which file format will it come in?",
            "Data exports from Lumora are provided in which format?",
        ),
    ),
    (
        "promotions",
        "winter_end",
        "date",
        ("2025-12-31", "2026-01-31", "2026-02-28"),
        "The Winter Upgrade offer (a free Nexus Mini with any mesh system) runs until {v}.",
        (
            "When does the Winter Upgrade offer end?",
            "What is the last day of the Winter Upgrade promotion?",
            "Winter Upgrade offer end date?",
        ),
        (
            "I'm waiting to buy a mesh system with the free hub deal. Until what date can I still get it?",
            "On what date does the Winter Upgrade sale finish?",
        ),
    ),
    (
        "promotions",
        "bundle_pct",
        "number",
        ("20", "20", "20"),
        "A router bought together with an extender takes {v}% off the pair.",
        (
            "What percentage discount does the router-and-extender bundle give?",
            "How many percent off is the bundle offer?",
            "Bundle discount rate in percent?",
        ),
        (
            "If I buy a router together with an extender, what percent do I save?",
            "The bundle deal takes how many percent off?",
        ),
    ),
    (
        "promotions",
        "stack_student",
        "yesno",
        ("yes", "yes", "no"),
        (
            "Promotions can be combined with the student discount.",
            "Promotions cannot be combined with the student discount; the larger saving applies.",
        ),
        (
            "Can promotions be combined with the student discount?",
            "Does the student discount stack with promotional offers?",
            "May I use a promo and the student discount on one order?",
        ),
        (
            "I'm a student and there's a sale on. Can I use both the sale price and my student savings?",
            "Do promotional offers combine with the student discount?",
        ),
    ),
    (
        "payments",
        "installments_min",
        "number",
        ("150", "150", "100"),
        "Orders of ${v} or more can be paid in installments.",
        (
            "What is the minimum order value for paying in installments, in dollars?",
            "From what order total (USD) can I split the payment into installments?",
            "Installment plan minimum order in dollars?",
        ),
        (
            "Can I pay for my order in parts? What order total in US dollars do I need to reach first?",
            "How big must an order be, in dollars, to qualify for installments?",
        ),
    ),
    (
        "payments",
        "installments_count",
        "number",
        ("4", "4", "4"),
        "The installment plan splits the price into {v} monthly payments with no interest.",
        (
            "Into how many installments can a payment be split?",
            "How many monthly installments does the payment plan have?",
            "Number of installments in Lumora's payment plan?",
        ),
        (
            "If I use the installment plan, how many payments will it be spread over?",
            "The installment option divides the price into how many payments?",
        ),
    ),
    (
        "payments",
        "paypal",
        "yesno",
        ("yes", "yes", "yes"),
        ("PayPal is accepted at checkout.", "PayPal is not accepted."),
        (
            "Does Lumora accept PayPal?",
            "Can I pay with PayPal?",
            "Is PayPal a supported payment method?",
        ),
        (
            "I don't have a credit card. Can I check out with my PayPal account?",
            "Is PayPal available at checkout?",
        ),
    ),
    (
        "warranty-claims",
        "doa_days",
        "number",
        ("14", "14", "30"),
        "A device that is dead on arrival must be reported within {v} days of delivery; it is replaced by express.",
        (
            "Within how many days must a dead-on-arrival device be reported?",
            "How many days do I have to report a device that arrived broken?",
            "Dead-on-arrival reporting window in days?",
        ),
        (
            "My new hub didn't turn on at all out of the box. How many days do I have to report it?",
            "A device that's dead on arrival must be reported within how many days?",
        ),
    ),
    (
        "warranty-claims",
        "receipt",
        "yesno",
        ("yes", "yes", "no"),
        (
            "A proof of purchase is required for every warranty claim.",
            "No proof of purchase is required: the device's serial number is enough.",
        ),
        (
            "Do I need a receipt to make a warranty claim?",
            "Is proof of purchase required for warranty service?",
            "Must I show a receipt for a warranty claim?",
        ),
        (
            "I lost the receipt for my thermostat. Is proof of purchase still needed to claim the warranty?",
            "Is a receipt required when filing a warranty claim?",
        ),
    ),
]


def build_facts() -> tuple[list[Fact], dict[str, str], dict[str, str]]:
    """Every fact; each document's title and scope sentence; and the category each category doc covers."""
    facts, titles, scopes = [], {}, {}
    for slug, one, many, products in CATEGORIES:
        doc = f"returns-{slug}"
        titles[doc] = f"Returns and warranty: {many}"
        scopes[doc] = f"Applies to every Lumora {one}: {', '.join(products)}."
        for key, kind, statement, train, eval_, values in CATEGORY_FACTS:
            names = {"one": one, "many": many, "thing": "{thing}", "v": "{v}"}  # {thing}, {v}: filled later
            stated = tuple(s.format(**names) for s in statement) if isinstance(statement, tuple) else None
            facts.append(
                Fact(
                    doc,
                    key,
                    kind,
                    values[slug],
                    stated or statement.format(**names),
                    tuple(q.format(**names) for q in train),
                    tuple(q.format(**names) for q in eval_),
                )
            )
    for slug, plan in PLANS:
        doc = f"plan-{slug}"
        titles[doc] = plan
        scopes[doc] = f"{plan} is a monthly subscription for Lumora cameras and doorbells."
        for key, kind, statement, train, eval_, values in PLAN_FACTS:
            facts.append(
                Fact(
                    doc,
                    key,
                    kind,
                    values[slug],
                    statement,
                    tuple(q.format(plan=plan) for q in train),
                    tuple(q.format(plan=plan) for q in eval_),
                )
            )
    for doc, (title, scope) in TOPICS.items():
        titles[doc], scopes[doc] = title, scope
    facts += [Fact(*row) for row in TOPIC_FACTS]
    return facts, titles, scopes


def product_things(doc: str) -> list[str]:
    """How a question may name a category's device: generically, or by one of its products."""
    for slug, one, _many, products in CATEGORIES:
        if doc == f"returns-{slug}":
            named = [p if set(one.split()) & set(p.lower().split()) else f"{p} {one}" for p in products]
            return [f"Lumora {name}" for name in [one, *named]]
    return []


def document(doc: str, version: str, facts: list[Fact], titles: dict[str, str], scopes: dict[str, str]) -> str:
    lines = [
        f"# {titles[doc]}",
        "",
        f"Lumora customer policy handbook, version {version[1:]}, effective {EFFECTIVE[version]}. {scopes[doc]}",
        "",
    ]
    lines += [f"- {fact.line(version)}" for fact in facts if fact.doc == doc]
    return "\n".join(lines) + "\n"


def make(out: Path) -> None:
    rng = random.Random(SEED)
    facts, titles, scopes = build_facts()
    docs = list(titles)

    def value(fact: Fact, version: str) -> str:
        return fact.values[VERSIONS.index(version)]

    def ask(fact: Fact, phrasing: str) -> str:
        if "{thing}" in phrasing:
            return phrasing.replace("{thing}", rng.choice(product_things(fact.doc)))
        return phrasing

    def record(fact: Fact, question: str, version: str) -> dict[str, object]:
        return {
            "question": question,
            "output": value(fact, version),
            "doc_ids": [fact.doc],
            "fact": f"{fact.doc}.{fact.key}",
            "kind": fact.kind,
            "version": version,
            "changed": value(fact, TRAIN_VERSION) != value(fact, EVAL_VERSION),
        }

    train = [record(f, ask(f, q), TRAIN_VERSION) for f in facts for q in f.train]
    second = set(rng.sample(range(len(facts)), N_EVAL - len(facts)))  # facts asked twice in eval
    eval_ = [record(f, ask(f, f.eval[0]), EVAL_VERSION) for f in facts]
    eval_ += [record(f, ask(f, f.eval[1]), EVAL_VERSION) for i, f in enumerate(facts) if i in second]
    rng.shuffle(train)
    rng.shuffle(eval_)
    train = [{"id": f"t{n:03d}", **r} for n, r in enumerate(train, start=1)]
    eval_ = [{"id": f"e{n:03d}", **r} for n, r in enumerate(eval_, start=1)]

    write(out / "data" / "train.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train))
    write(out / "data" / "eval.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in eval_))
    for doc in docs:
        write(out / "knowledge" / f"{doc}.md", document(doc, EVAL_VERSION, facts, titles, scopes))
    for version in VERSIONS[:-1]:
        header = f"<!-- superseded by version 3 ({EFFECTIVE['v3']}); not indexed: see README.md -->\n\n"
        body = "\n".join(document(doc, version, facts, titles, scopes) for doc in docs)
        write(out / "history" / f"handbook-{version}.md", header + body)
    write(out / "history" / "CHANGES.md", changes(facts))
    stale = [{"id": r["id"], "output": value(by_id(facts, str(r["fact"])), TRAIN_VERSION)} for r in eval_]
    write(out / "fake" / "stale_oracle.jsonl", "".join(json.dumps(r) + "\n" for r in stale))


def by_id(facts: list[Fact], fact_id: str) -> Fact:
    return next(f for f in facts if f"{f.doc}.{f.key}" == fact_id)


def changes(facts: list[Fact]) -> str:
    lines = ["# Handbook changes", ""]
    for old, new in zip(VERSIONS, VERSIONS[1:]):
        changed = [f for f in facts if f.values[VERSIONS.index(old)] != f.values[VERSIONS.index(new)]]
        lines += [f"## Version {new[1:]} (effective {EFFECTIVE[new]}): {len(changed)} changes", ""]
        for f in changed:
            lines.append(f"- `{f.doc}` {f.key}: {f.values[VERSIONS.index(old)]} -> {f.values[VERSIONS.index(new)]}")
        lines.append("")
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
