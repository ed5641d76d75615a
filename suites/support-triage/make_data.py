"""Deterministic generator for the ``support-triage`` suite (Lumora support tickets).

Run ``python suites/support-triage/make_data.py`` from anywhere; it (re)writes, next to itself:
data/train.jsonl (360), data/eval.jsonl (150), knowledge/products.jsonl (24 products),
knowledge/policies.md and fake/noisy_oracle.jsonl.  Standard library only, seeded with
random.Random(20261123); the output is byte-identical across runs.

Task: read a ticket (subject + body) and answer with the JSON object
``{"category": ..., "priority": ..., "product": ...}`` where ``product`` is the exact catalogue
name.  Tickets usually name the product only by SKU code, old nickname or a description, so the
catalogue (knowledge/products.jsonl) is needed to resolve it.  6 products are held out of train.

Category = what the customer wants (not which words appear):
  billing          money taken wrongly or billing questions: double/unknown charge, missed promo,
                   invoices, payment methods.
  technical        the device malfunctions or the customer asks how to use/set it up.
  shipping         an order not yet in hand: lost or late package, wrong item delivered,
                   delivery questions.
  returns          sending a product back or getting the refund for a return (also when the
                   product was unsafe but the customer asks for their money back).
  account          login, password, 2FA, email/username change, users, suspected account takeover.
  feature_request  asks for a capability the product does not have.
Priority (first matching rule wins; tone and words like "URGENT" in the subject do not count):
  urgent  a safety hazard (overheating, smoke, burning smell, sparks, melting) in any category, or
          a complete outage of a device that a business (cafe, clinic, office, shop...) depends on.
  high    a device not working at all for a home user; charged twice or charged for an order
          never placed; a package lost or marked delivered but missing; suspected account takeover.
  medium  degraded or intermittent function (also for businesses); a delayed shipment or wrong
          item; a wrong amount charged or promo not applied; a refund after a return not received
          or a broken return label; locked out of the account (lost 2FA, lockout, no reset email).
  low     questions and how-tos, invoices, return-policy questions, account changes, cosmetic
          issues and every feature request (even from businesses or angry customers).
"""

import json
import os
import random

SEED = 20261123
HERE = os.path.dirname(os.path.abspath(__file__))

# slug, name, SKU, nickname, year, price USD, warranty months, kind, description, facts (";"-separated)
PRODUCTS = [
    (
        "arc-r5",
        "Lumora Arc R5",
        "LR-R5-100",
        "Beacon",
        2021,
        129,
        12,
        "router",
        "dual-band router with the USB 3.0 storage port",
        "Wi-Fi 6 dual-band (AX3000); four gigabit LAN ports; a USB 3.0 port for shared network storage",
    ),
    (
        "arc-r7",
        "Lumora Arc R7",
        "LR-R7-300",
        "Thunderbird",
        2023,
        219,
        24,
        "router",
        "tri-band router with the 2.5G WAN port",
        "Wi-Fi 6E tri-band (AXE5400); a 2.5 Gbps WAN port; a built-in WireGuard VPN server",
    ),
    (
        "arc-r9-pro",
        "Lumora Arc R9 Pro",
        "LR-R9P-500",
        "Stormhawk",
        2025,
        349,
        36,
        "router",
        "Wi-Fi 7 router with the two 10-gig ports",
        "Wi-Fi 7 quad-band (BE19000); two 10 Gbps ports, one of them SFP+; a front touchscreen for status",
    ),
    (
        "mesh-x2",
        "Lumora Mesh X2",
        "LM-X2-120",
        "Hearth",
        2020,
        179,
        12,
        "mesh",
        "two-pack Wi-Fi 5 mesh kit",
        "two Wi-Fi 5 (AC1200) nodes; covers about 3,000 sq ft; one Ethernet port per node",
    ),
    (
        "mesh-x3",
        "Lumora Mesh X3",
        "LM-X3-220",
        "Tandem",
        2022,
        299,
        24,
        "mesh",
        "three-pack mesh system with wired backhaul",
        "three Wi-Fi 6 (AX3600) nodes; covers about 5,500 sq ft; supports wired Ethernet backhaul",
    ),
    (
        "mesh-x5",
        "Lumora Mesh X5",
        "LM-X5-480",
        "Constellation",
        2024,
        449,
        36,
        "mesh",
        "Wi-Fi 6E mesh with the dedicated backhaul band",
        "three Wi-Fi 6E tri-band nodes; a dedicated 5 GHz backhaul band; covers about 7,500 sq ft",
    ),
    (
        "eye-c1",
        "Lumora Eye C1",
        "LC-C1-010",
        "Pebble Cam",
        2021,
        49,
        12,
        "camera",
        "little indoor camera with the microSD slot",
        "indoor 1080p video; two-way audio; a microSD slot for cards up to 128 GB",
    ),
    (
        "eye-c4-outdoor",
        "Lumora Eye C4 Outdoor",
        "LC-C4-040",
        "Lighthouse",
        2023,
        139,
        24,
        "camera",
        "outdoor battery camera with the spotlight",
        "2K video with a built-in spotlight; IP66 weatherproofing; a rechargeable battery rated for about 6 months",
    ),
    (
        "eye-c8-pan",
        "Lumora Eye C8 Pan",
        "LC-C8-080",
        "Owl",
        2025,
        99,
        24,
        "camera",
        "pan-and-tilt camera that follows people around",
        "4K video; 360-degree pan and 90-degree tilt with auto-tracking; local recording to a Lumora Nexus hub",
    ),
    (
        "spark-plug",
        "Lumora Spark Plug",
        "LP-S1-001",
        "Firefly",
        2020,
        19,
        12,
        "plug",
        "basic single smart plug",
        "a 15 A maximum load; 2.4 GHz Wi-Fi only; works with Alexa and Google Home",
    ),
    (
        "spark-plug-duo",
        "Lumora Spark Plug Duo",
        "LP-S2-002",
        "Twin Spark",
        2022,
        34,
        12,
        "plug",
        "double-outlet plug with energy monitoring",
        "two independently switched outlets; per-outlet energy monitoring; Matter over Wi-Fi",
    ),
    (
        "spark-outdoor",
        "Lumora Spark Outdoor Plug",
        "LP-O1-050",
        "Lantern",
        2024,
        39,
        24,
        "plug",
        "weatherproof plug for the garden",
        "an IP44 weatherproof housing; two outlets and a dusk-to-dawn light sensor; Zigbee 3.0",
    ),
    (
        "climate-t1-lite",
        "Lumora Climate T1 Lite",
        "LT-T1-100",
        "Sprout",
        2022,
        89,
        12,
        "thermostat",
        "budget thermostat that runs on AA batteries",
        "runs on two AA batteries, no C-wire needed; single-stage heating and cooling; 7-day schedules",
    ),
    (
        "climate-t2",
        "Lumora Climate T2",
        "LT-T2-200",
        "Ember",
        2021,
        149,
        24,
        "thermostat",
        "thermostat with the round color screen",
        "requires a C-wire; a round 3.5-inch color display; supports heat pumps with auxiliary heat",
    ),
    (
        "climate-t3-smart",
        "Lumora Climate T3 Smart",
        "LT-T3-300",
        "Aurora",
        2025,
        229,
        36,
        "thermostat",
        "thermostat that came with the room sensors",
        "two wireless room sensors included; a built-in CO2 air-quality sensor; Matter over Thread",
    ),
    (
        "chime-d1",
        "Lumora Chime D1",
        "LD-D1-110",
        "Porchlight",
        2021,
        99,
        12,
        "doorbell",
        "wired doorbell that uses the old chime wires",
        "hard-wired to existing 16-24 V doorbell wiring; 1080p head-to-toe video; works with the existing indoor chime",
    ),
    (
        "chime-d2-battery",
        "Lumora Chime D2 Battery",
        "LD-D2-210",
        "Knock Knock",
        2023,
        149,
        24,
        "doorbell",
        "battery doorbell with the quick-release pack",
        "a quick-release battery lasting about 4 months; 1536p video; package detection",
    ),
    (
        "chime-d3-pro",
        "Lumora Chime D3 Pro",
        "LD-D3-310",
        "Sentinel",
        2025,
        229,
        36,
        "doorbell",
        "doorbell with the built-in fingerprint reader",
        "a fingerprint reader that unlocks Lumora smart locks; dual front and package cameras; Power over Ethernet",
    ),
    (
        "nexus-h1",
        "Lumora Nexus H1",
        "LH-H1-001",
        "Switchboard",
        2020,
        69,
        12,
        "hub",
        "hub with the Zigbee and Z-Wave radios",
        "Zigbee 3.0 and Z-Wave Plus radios; up to 100 connected devices; Ethernet only, no Wi-Fi",
    ),
    (
        "nexus-h2",
        "Lumora Nexus H2",
        "LH-H2-002",
        "Maestro",
        2023,
        119,
        24,
        "hub",
        "Matter hub that doubles as a Thread border router",
        "Matter controller and Thread border router; Zigbee 3.0; a 24-hour battery backup",
    ),
    (
        "nexus-mini",
        "Lumora Nexus Mini",
        "LH-M1-003",
        "Acorn",
        2024,
        49,
        12,
        "hub",
        "tiny USB-powered hub",
        "USB-C powered; Zigbee 3.0 only; up to 32 connected devices",
    ),
    (
        "reach-e1",
        "Lumora Reach E1",
        "LE-E1-010",
        "Stepping Stone",
        2019,
        39,
        12,
        "extender",
        "wall-plug Wi-Fi 5 booster",
        "wall-plug Wi-Fi 5 (AC750); one Ethernet port; a signal-strength LED bar",
    ),
    (
        "reach-e3",
        "Lumora Reach E3",
        "LE-E3-030",
        "Relay Runner",
        2022,
        69,
        24,
        "extender",
        "Wi-Fi 6 extender with the passthrough socket",
        "Wi-Fi 6 (AX1800); a pass-through power socket; one gigabit Ethernet port",
    ),
    (
        "reach-e5",
        "Lumora Reach E5",
        "LE-E5-050",
        "Outpost",
        2024,
        89,
        24,
        "extender",
        "outdoor extender for the backyard",
        "an IP65 outdoor housing; Wi-Fi 6 with about 300 ft range; powered over Ethernet (PoE)",
    ),
]
HELD_OUT = ["arc-r9-pro", "mesh-x5", "eye-c8-pan", "spark-outdoor", "climate-t3-smart", "chime-d3-pro"]

# kind: catalogue label, noun, what goes down, degraded symptoms, requested features, how-tos
KINDS = {
    "router": (
        "Wi-Fi router",
        "router",
        "the internet",
        [
            "drops the Wi-Fi every hour or so",
            "only gives me about half the speed I pay for",
            "keeps kicking my laptop off the 5 GHz band",
        ],
        ["show data usage per device", "pause Wi-Fi for the kids on a schedule", "alert me when a new device joins"],
        ["set up a guest network", "forward a port for my game console"],
    ),
    "mesh": (
        "mesh Wi-Fi system",
        "mesh system",
        "the Wi-Fi",
        [
            "has one node that keeps going offline",
            "gets really slow upstairs in the evenings",
            "makes my devices stick to the farthest node",
        ],
        ["name each node in the app", "prioritise video calls automatically", "show which node each device uses"],
        ["add another node", "move a node to the garage"],
    ),
    "camera": (
        "security camera",
        "camera",
        "the camera feed",
        [
            "loses night vision after an hour",
            "disconnects from the app a few times a day",
            "records clips with no sound",
        ],
        [
            "tell pets apart from people",
            "share a live view link with my neighbour",
            "blur part of the image for privacy",
        ],
        ["change the motion zones", "export a clip to my laptop"],
    ),
    "plug": (
        "smart plug",
        "smart plug",
        "everything plugged into it",
        [
            "ignores its schedule about half the time",
            "shows offline in the app for hours",
            "turns itself off randomly at night",
        ],
        [
            "work as a countdown timer from the button",
            "remember its state after a power cut",
            "export energy data to a spreadsheet",
        ],
        ["set a schedule", "group it with my other plugs"],
    ),
    "thermostat": (
        "smart thermostat",
        "thermostat",
        "the heating",
        [
            "overshoots the set temperature by three degrees",
            "forgets its schedule every few days",
            "takes ages to respond in the app",
        ],
        [
            "pre-heat the house based on my phone's location",
            "show a humidity history",
            "use separate holiday schedules",
        ],
        ["set an eco temperature", "calibrate the temperature reading"],
    ),
    "doorbell": (
        "video doorbell",
        "doorbell",
        "the doorbell and its video",
        ["sends notifications a minute late", "has choppy live video", "rings the chime twice for every press"],
        [
            "play a custom chime sound",
            "answer visitors with quick text replies",
            "attach a snapshot to each notification",
        ],
        ["change the ring sound", "share access with my partner"],
    ),
    "hub": (
        "smart-home hub",
        "hub",
        "all of our automations",
        [
            "loses a few Zigbee devices every night",
            "runs automations with a long delay",
            "drops off the network once a day",
        ],
        ["back up automations to the cloud", "run automations at sunrise offsets", "show a log of every device event"],
        ["pair a new sensor", "move my devices from the old hub"],
    ),
    "extender": (
        "Wi-Fi range extender",
        "extender",
        "the Wi-Fi in the back rooms",
        [
            "keeps disconnecting from the main router",
            "has a much weaker signal than before",
            "slows everything down when it's on",
        ],
        ["use the same network name as my router", "schedule a nightly reboot", "list connected devices in the app"],
        ["reset the extender", "connect it to a new router"],
    ),
}

CATS = ["billing", "technical", "shipping", "returns", "account", "feature_request"]
COUNTS = {"train": dict(zip(CATS, [61, 108, 58, 50, 43, 40])), "eval": dict(zip(CATS, [25, 45, 24, 21, 18, 17]))}
PRIO = {"U": "urgent", "H": "high", "M": "medium", "L": "low"}

# Body templates "TAG|text". TAG OUT = total outage: urgent at a business site, high at home.
BODIES = {
    "technical": [
        "OUT|{Ref} {site} {deadp} {when}. {Thing} is down for {whom}.",
        "OUT|Since {when}, {ref} {site} {dead}, and {thing} is down for {whom}.",
        "OUT|We already tried a factory reset, but nothing: {ref} {dead}. Right now {thing} is down {site}.",
        "OUT|{Ref} {deadp} {when} and nothing brings it back. {Thing} is down {site}, please help.",
        "U|{Ref} is getting extremely hot to the touch, and I noticed a burning smell {when}.",
        "U|There was smoke coming out of {ref} {when}! I unplugged it; what should I do next?",
        "U|{Ref} started making a crackling sound and the plastic near the power socket looks melted.",
        "M|Since {when}, {ref} {deg}.",
        "M|Ever since the last firmware update, {ref} {deg}. A reboot helps for an hour or so.",
        "M|{Ref} {bsite} {deg}. It still works most of the time, but customers notice.",
        "M|Intermittent issue: {ref} {deg}, mostly in the evenings. Everything else seems fine.",
        "L|{Ref} works fine, but {cos}. Is that normal?",
        "L|Quick question: how do I {howto} on {ref}?",
        "L|Is {ref} compatible with {compat}? I plan to set it up this weekend.",
    ],
    "billing": [
        "H|I was charged {amount} twice for order {order}. Please refund the duplicate.",
        "H|My card statement shows two identical charges of {amount} from Lumora {when}, both for {ref}.",
        "H|Your checkout glitched and billed me twice for {ref} (order {order}).",
        "H|Our company card was charged twice for {ref} {bsite}. Only one unit was ordered.",
        "H|There's a {amount} charge from Lumora {when} for {ref}, but I never placed that order.",
        "M|I paid {amount} for {ref}, but the promo code {code} wasn't applied at checkout.",
        "M|The site listed {ref} at a lower price {when}, yet I was billed {amount}. Can you adjust it?",
        "M|I was charged for express shipping on order {order} ({ref}) although I chose the free option.",
        "L|Could you send me a VAT invoice for order {order}? It was for {ref}.",
        "L|Do you offer monthly financing for {ref}, or only full payment?",
        "L|Please update the billing address on the invoice for {ref}; we moved {when}.",
        "L|Does the {amount} price of {ref} include sales tax, or is that added later?",
        "L|Which payment methods can I use to buy {ref}? I'd prefer PayPal.",
    ],
    "shipping": [
        "H|Tracking says order {order} was delivered {when}, but there is no package anywhere.",
        "H|My order for {ref} is marked delivered, but it never arrived. The neighbours haven't seen it either.",
        "H|The carrier now says the parcel with {ref} (order {order}) is lost.",
        "H|Order {order} shows delivered {when}, but the box with {ref} never showed up at our door.",
        "M|Order {order} for {ref} was supposed to arrive {when} and it still hasn't shipped.",
        "M|Tracking for {ref} hasn't updated since {when}. Is it stuck somewhere?",
        "M|The delivery date for {ref} keeps getting pushed back; order {order} is now a week late.",
        "M|We need {ref} for the opening {bsite}, but order {order} is delayed.",
        "M|I ordered {ref}, but the box contained {other} instead.",
        "M|Wrong item received for order {order}: I got {other}, not {ref}.",
        "L|Do you ship {ref} to Canada, and how much does that cost?",
        "L|Can I still change the delivery address for order {order}? It's {ref}.",
        "L|How long does standard shipping usually take for {ref}?",
    ],
    "returns": [
        "U|{Ref} gave off a burning smell {when}, so I unplugged it. I don't want a replacement, just my money back.",
        "U|{Ref} overheated and the casing warped. Please send a return label so I can get a full refund.",
        "U|Sparks came out of {ref} when I plugged it in {when}. I want to return it immediately.",
        "M|I returned {ref} {when} and still haven't received my refund.",
        "M|The tracking shows you received my return of {ref} two weeks ago, but no refund so far.",
        "M|My refund for {ref} (order {order}) was only partial; I expected {amount} back.",
        "M|The prepaid return label for {ref} won't scan at the drop-off point.",
        "L|I'd like to return {ref}; it's still unopened. What's the process?",
        "L|What's the return window for {ref}? I bought it {when}.",
        "L|I changed my mind about {ref}. Can I exchange it for a different model?",
        "L|{Ref} arrived with a small scratch on top. It works, but I'd like to swap it.",
        "L|Can I return {ref} if I already threw away the original box?",
        "L|We bought {ref} {bsite} but it's more than we need. How do I send it back?",
    ],
    "account": [
        "H|I got an email saying my Lumora password was changed {when}, but it wasn't me.",
        "H|Someone logged into my Lumora account from another country {when} and can control {ref}.",
        "H|There are devices I don't recognise in my Lumora app next to {ref}. I think my account was hacked.",
        "M|I can't log in to manage {ref}: the password reset emails never arrive.",
        "M|I lost my phone with the 2FA app {when}, and now I'm locked out and can't control {ref}.",
        "M|My account got locked after too many login attempts, so I can't reach {ref} in the app.",
        "M|I'm locked out of our business account and can't manage {ref} {bsite}.",
        "L|How do I change the email on my account? {Ref} is registered to my old work address.",
        "L|Please help me turn on two-factor authentication; I just set up {ref}.",
        "L|Can I add my partner as a second user for {ref}?",
        "L|Where do I change my password? The app only shows the settings for {ref}.",
        "L|How do I move {ref} to my new account and delete the old one?",
        "L|Can I change the username on my account? I only use it for {ref}.",
    ],
    "feature_request": [
        "L|It would be great if {ref} could {feat}.",
        "L|Any plans to let {ref} {feat}?",
        "L|Feature request: please make {ref} able to {feat}.",
        "L|I love {ref}, but I really wish it could {feat}.",
        "L|Could a future firmware update let {ref} {feat}?",
        "L|Suggestion: {ref} should be able to {feat}. Competitors already do this.",
        "L|Not a complaint, just an idea: let {ref} {feat}.",
        "L|My kids asked whether {ref} can {feat}. It can't yet, so please add it!",
        "L|We use {ref} {bsite}; it would help a lot if it could {feat}.",
        "L|Honestly disappointed that {ref} still can't {feat}. Please add it.",
        "L|Is there a public roadmap? I'd really like {ref} to {feat}.",
        "L|Please consider letting {ref} {feat} from the app.",
        "L|Would you add an option for {ref} to {feat}? I'd pay for it.",
    ],
}
SUBJECTS = {
    "technical": [
        "Problem with {sref}",
        "Need help with {sref}",
        "{Sref} issue",
        "Trouble with {sref}",
        "Support needed",
        "Help please",
        "Something is wrong with {sref}",
        "URGENT: {sref}",
        "Question about {sref}",
        "{Sref} acting up",
    ],
    "billing": [
        "Billing issue",
        "Question about my invoice",
        "Charge on my card",
        "Order {order} payment",
        "Payment problem with {sref}",
        "Billing question re: {sref}",
        "Refund the charge?",
        "Invoice for order {order}",
        "URGENT billing problem",
    ],
    "shipping": [
        "Where is my order?",
        "Order {order} delivery",
        "Shipping question",
        "Delivery problem",
        "Package for {sref}",
        "Order {order}",
        "Shipping issue with {sref}",
        "Tracking not updating?",
        "Delivery help needed",
    ],
    "returns": [
        "Return request",
        "Returning {sref}",
        "Refund status",
        "Return for order {order}",
        "Question about returns",
        "Send back {sref}",
        "Return label",
        "Want my money back",
        "Refund for {sref}",
    ],
    "account": [
        "Account problem",
        "Login issue",
        "Can't access my account",
        "Account question",
        "Help with my Lumora account",
        "Security concern",
        "Account settings",
        "Password / 2FA help",
        "Account help for {sref}",
    ],
    "feature_request": [
        "Feature request",
        "Suggestion for {sref}",
        "Idea for the app",
        "Feature idea: {sref}",
        "Wishlist item",
        "Please add this",
        "Improvement for {sref}",
        "Product feedback",
        "Request for {sref}",
    ],
}
HOME = [
    ("at home", "the whole family"),
    ("in my apartment", "me and my roommates"),
    ("in our house", "all of us"),
    ("at my place", "my whole household"),
]
BIZ = [
    ("at our café", "our staff and customers"),
    ("at our dental clinic", "the front desk and the patients"),
    ("in my hair salon", "the whole salon"),
    ("at our 12-person office", "everyone in the office"),
    ("at the restaurant I run", "the kitchen and the tills"),
    ("in our shop", "the shop floor"),
]
WHEN = [
    "last Tuesday",
    "yesterday",
    "this morning",
    "over the weekend",
    "two days ago",
    "on Monday",
    "last week",
    "on Friday evening",
    "three days ago",
    "last night",
]
DEAD = [
    "is completely dead",
    "won't power on at all",
    "shows no lights at all",
    "won't connect to anything anymore",
    "just blinks red and does nothing",
]
DEADP = [
    "died",
    "stopped working completely",
    "went completely dark",
    "stopped powering on",
    "dropped offline for good",
]
COSMETIC = [
    "the status light is a slightly different color than in the photos",
    "the sticker on the front is peeling off",
    "there is a small scuff on the casing",
    "the LED is brighter than I'd like at night",
]
COMPAT = ["Apple Home", "Google Home", "Alexa", "SmartThings", "my ISP's fiber modem"]
NAMES = [
    "Maria G.",
    "Tom Becker",
    "Aisha",
    "Jonas",
    "Priya Patel",
    "Luis",
    "Chen Wei",
    "Hannah",
    "Olu A.",
    "Sofia Rossi",
    "Dmitri",
    "Grace",
    "Kenji Sato",
    "Fatima",
    "Noah",
    "Élodie Martin",
]
OPEN_POLITE = ["Hi!", "Hello Lumora team.", "Good morning.", "Hi there!", "Hello."]
OPEN_ANGRY = [
    "Honestly, this is unacceptable.",
    "I'm really frustrated with Lumora right now.",
    "This is the third time I'm writing.",
    "Not happy at all.",
]
CLOSE_POLITE = ["Thanks, {name}.", "Thank you! {name}", "Best regards, {name}", "Cheers, {name}", "Many thanks."]
CLOSE_ANGRY = ["Fix this now.", "I expect an answer today.", "{name}"]

POLICIES = """# Lumora support triage policy

Every ticket gets a **category**, a **priority** and the **product**. Always write the exact catalogue product name (for example "Lumora Mesh X3"), even when the customer only gives a SKU code, an old nickname or a description; look it up in the product catalogue.

## Categories

Choose the category from what the customer wants, not from the words they use.

- **billing**: money taken wrongly or billing questions (double or unknown charges, missed promo codes, invoices, payment methods).
- **technical**: the device malfunctions, or the customer asks how to use or set it up.
- **shipping**: an order not yet in hand (lost or late package, wrong item delivered, delivery questions).
- **returns**: sending a product back or getting the refund for a return, including unsafe products the customer wants refunded.
- **account**: login, password, two-factor authentication, email or username changes, extra users, suspected account takeover.
- **feature_request**: a capability the product does not have yet.

## Priorities

Apply the first rule that matches. Tone and words such as "URGENT" in a subject do not change the priority.

1. **urgent**: any safety hazard (overheating, smoke, burning smell, sparks, melting), or a complete outage of a device a business depends on.
2. **high**: a device not working at all for a home user, a duplicate or unrecognised charge, a lost package or one marked delivered but missing, or a suspected account takeover.
3. **medium**: degraded or intermittent function (businesses included), a delayed shipment or wrong item, a wrong amount charged, a missing refund for a return or a broken return label, or a customer locked out of their account.
4. **low**: questions and how-tos, invoices, return-policy questions, account changes, cosmetic issues and all feature requests.
"""


def art(noun):
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def cap(s):
    return s[:1].upper() + s[1:]


def refs(rng, p):
    """Return (body reference, short subject reference) for product tuple p."""
    name, sku, nick, kind, desc = p[1], p[2], p[3], p[7], p[8]
    r, mine = rng.random(), rng.choice(["my", "the", "our"])
    if r < 0.4:
        return rng.choice([f"{mine} {sku}", f"{mine} {sku} unit", f"{mine} {KINDS[kind][1]} ({sku})"]), sku
    if r < 0.6:
        return f"{mine} {nick}", f"my {nick}"
    if r < 0.8:
        return f"{mine} {desc}", f"my {KINDS[kind][1]}"
    return f"{mine} {name}", name


def typo(rng, body, ref):
    words = body.split(" ")
    idx = [
        i
        for i, w in enumerate(words)
        if w.isalpha() and w.islower() and len(w) >= 5 and w not in ref and len(set(w)) > 2
    ]
    if not idx:
        return body
    i = rng.choice(idx)
    w = words[i]
    j = rng.choice([k for k in range(1, len(w) - 2) if w[k] != w[k + 1]] or [1])
    words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def make_ticket(rng, cat, p):
    tag, text = rng.choice(BODIES[cat]).split("|", 1)
    ref, sref = refs(rng, p)
    kind = KINDS[p[7]]
    biz = rng.random() < 0.4
    site, whom = rng.choice(BIZ if biz else HOME)
    others = [k for k in KINDS if k != p[7]]
    price = p[5]
    slots = dict(
        ref=ref,
        Ref=cap(ref),
        sref=sref,
        Sref=cap(sref),
        when=rng.choice(WHEN),
        site=site,
        whom=whom,
        bsite=rng.choice(BIZ)[0],
        thing=kind[2],
        Thing=cap(kind[2]),
        dead=rng.choice(DEAD),
        deadp=rng.choice(DEADP),
        deg=rng.choice(kind[3]),
        feat=rng.choice(kind[4]),
        howto=rng.choice(kind[5]),
        cos=rng.choice(COSMETIC),
        compat=rng.choice(COMPAT),
        order="#" + str(rng.randint(1000000, 9999999)),
        code="LUMO" + str(rng.randint(10, 40)),
        amount=rng.choice([f"${price}", f"${price}.00", f"{price} USD"]),
        other=art(KINDS[rng.choice(others)][1]),
    )
    prio = ("urgent" if biz else "high") if tag == "OUT" else PRIO[tag]
    body = text.format(**slots)
    name = rng.choice(NAMES)
    tone = rng.random()
    if tone < 0.6:
        parts = [rng.choice(OPEN_POLITE + [""]), body, rng.choice(CLOSE_POLITE + [""]).format(name=name)]
    elif tone < 0.8:
        parts = [rng.choice(OPEN_ANGRY), body, rng.choice(CLOSE_ANGRY).format(name=name)]
    else:
        parts = [body, rng.choice(["", name])]
    body = " ".join(x for x in parts if x)
    if rng.random() < 0.05:
        body = typo(rng, body, ref)
    subject = rng.choice(SUBJECTS[cat]).format(**slots)
    return subject, body, prio


def build_split(rng, split, prods, seen_pairs):
    cats = [c for c in CATS for _ in range(COUNTS[split][c])]
    rng.shuffle(cats)
    assert len(prods) == len(cats)
    rng.shuffle(prods)
    items = []
    for n, (cat, p) in enumerate(zip(cats, prods), 1):
        while True:
            subject, body, prio = make_ticket(rng, cat, p)
            if (subject, body) not in seen_pairs and len(body.split()) < 70 and len(subject.split()) < 10:
                break
        seen_pairs.add((subject, body))
        out = json.dumps({"category": cat, "priority": prio, "product": p[1]})
        items.append(
            {
                "id": f"{split}-{n:04d}",
                "subject": subject,
                "body": body,
                "output": out,
                "label": cat,
                "doc_ids": ["prod-lumora-" + p[0]],
            }
        )
    return items


# noisy oracle mix over the 150 eval items: exact, wrong priority, wrong product, fenced, truncated, prose
NOISE = ["exact"] * 105 + ["prio"] * 15 + ["product"] * 12 + ["fence"] * 8 + ["trunc"] * 6 + ["prose"] * 4


def noisy(rng, item, kind):
    ref = json.loads(item["output"])
    if kind == "exact":
        return item["output"]
    if kind == "prio":
        ref["priority"] = rng.choice([x for x in PRIO.values() if x != ref["priority"]])
        return json.dumps(ref)
    if kind == "product":
        ref["product"] = rng.choice([p[1] for p in PRODUCTS if p[1] != ref["product"]])
        return json.dumps(ref)
    if kind == "fence":
        return "```json\n" + item["output"] + "\n```"
    if kind == "trunc":
        return item["output"][: rng.randint(10, len(item["output"]) - 2)]
    return f"This looks like a {ref['category'].replace('_', ' ')} ticket about the {ref['product']}; I would give it {ref['priority']} priority."


def write(rel, text):
    path = os.path.join(HERE, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def jsonl(rows):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main():
    rng = random.Random(SEED)
    seen = [p for p in PRODUCTS if p[0] not in HELD_OUT]
    held = [p for p in PRODUCTS if p[0] in HELD_OUT]
    assert len(PRODUCTS) == 24 and len(held) == 6
    pairs = set()
    train = build_split(rng, "train", seen * 20, pairs)
    eval_prods = seen * 5 + rng.sample(seen, 10) + held * 8 + rng.sample(held, 2)
    evals = build_split(rng, "eval", eval_prods, pairs)
    catalogue = []
    for p in PRODUCTS:
        f = p[9].split("; ")
        text = (
            f"{p[1]} (SKU {p[2]}) is a Lumora {KINDS[p[7]][0]} released in {p[4]}. It was first marketed under the "
            f'nickname "{p[3]}", and many customers still call it that. Price: ${p[5]} USD. Warranty: {p[6]} months '
            f"from the date of purchase. Key facts: {f[0]}; {f[1]}; {f[2]}. In support tickets, always refer to it by "
            f"its catalogue name, {p[1]}."
        )
        assert 60 <= len(text.split()) <= 120, (p[1], len(text.split()))
        catalogue.append({"id": "prod-lumora-" + p[0], "title": p[1], "text": text})
    held_names = {p[1] for p in held}
    assert not any(json.loads(x["output"])["product"] in held_names for x in train)
    assert sum(json.loads(x["output"])["product"] in held_names for x in evals) == 50
    write("data/train.jsonl", jsonl(train))
    write("data/eval.jsonl", jsonl(evals))
    write("knowledge/products.jsonl", jsonl(catalogue))
    write("knowledge/policies.md", POLICIES)
    noise = NOISE[:]
    rng.shuffle(noise)
    write("fake/noisy_oracle.jsonl", jsonl({"id": x["id"], "output": noisy(rng, x, k)} for x, k in zip(evals, noise)))


if __name__ == "__main__":
    main()
