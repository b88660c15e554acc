"""A small labelled set for measuring knowledge base answers, written for this project: the
internal documents of a made-up outdoor shop, and questions phrased the way a customer or a
colleague would ask them, each with the passage that answers it and the fact the answer must hold.

Used by test_quality.py (retrieval hit@3 >= 0.9 with the default embedding model) and by
bench/knowledge_quality.py (hit@1, hit@3 and answers containing the fact, in bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

DOCUMENTS: dict[str, str] = {
    "returns.md": """# Returns and refunds

Items bought online or in a shop can be returned within 60 days of delivery, unused and with their labels.
Sale items can be returned within 14 days.

Refunds go back to the original payment method. Card refunds appear on the statement within 5 working days
after the returned parcel reaches our warehouse in Utrecht.

Return shipping is free for members of the Trail Club; other customers pay a flat fee of 4.95 euros,
deducted from the refund.

Gift cards, opened tins of food and personalised items cannot be returned.""",
    "shipping.md": """# Shipping

Orders placed before 3 pm on a weekday leave our warehouse the same day. Standard delivery within the
Netherlands takes one to two working days; to Belgium and Germany two to four working days.

Shipping is free on orders over 75 euros. Below that, standard delivery costs 5.95 euros and express
next-day delivery costs 9.95 euros.

Every parcel gets a tracking link by e-mail as soon as the carrier scans it. We do not ship to P.O. boxes.
Parcels that cannot be delivered wait at the nearest pick-up point for seven days.""",
    "warranty.md": """# Warranty and repairs

Tents, backpacks and sleeping bags carry a three-year warranty against manufacturing defects. Clothing and
footwear carry a two-year warranty. Normal wear, such as worn soles or abrasion, is not covered.

To make a warranty claim, send a photo of the defect and the order number to repairs@northwind.example.
Our repair workshop fixes most zips, seams and tent poles within ten working days; when a repair is not
possible we replace the item or refund it.

Batteries in headlamps and GPS devices are covered for one year only.""",
    "account_security.md": """# Your account

To reset a forgotten password, choose "Forgot password" on the login page; the reset link we e-mail you
stays valid for 30 minutes.

We strongly recommend turning on two-step verification under Account, Security. It asks for a six-digit code
from an authenticator app each time you log in on a new device.

To close your account, write to privacy@northwind.example. We delete your personal data within 30 days,
except invoices, which Dutch law requires us to keep for seven years.""",
    "trail_club.md": """# Trail Club loyalty programme

Membership of the Trail Club is free. Members earn one point for every euro spent; 100 points are worth a
5 euro voucher, which is sent automatically by e-mail.

Points expire 24 months after they are earned. Members also get free return shipping and early access to
the winter sale.

Points cannot be earned on gift card purchases, and vouchers cannot be exchanged for cash.""",
    "stores.md": """# Shops and opening hours

Our flagship shop is on Oudegracht 112 in Utrecht. It opens Monday to Saturday from 9:30 to 18:00, with late
opening until 21:00 on Thursdays, and on Sundays from 12:00 to 17:00.

The Amsterdam shop at Kinkerstraat 40 keeps the same hours but is closed on Mondays.

Customer service can be reached by phone on weekdays from 8:00 to 20:00 at +31 30 123 4567, and by chat on the
website every day until 22:00.""",
    "product_care.md": """# Caring for your gear

Wash waterproof jackets at 30 degrees with a technical detergent, never with fabric softener, which
clogs the membrane. Tumble-dry on low heat to restore the water-repellent finish.

Dry a tent completely before storing it, even after a sunny trip, to prevent mildew. Store it loosely in a cool
place rather than tightly packed.

Down sleeping bags should be stored uncompressed in the large cotton storage sack that comes with them.
Leather boots need wax twice a season; clean off the mud with lukewarm water first.""",
    "rentals.md": """# Gear rental

The Utrecht shop rents tents, stoves and backpacks by the weekend or by the week. A weekend rental of a
two-person tent costs 35 euros; a week costs 70 euros.

Rentals need a deposit of 100 euros per item, returned when the gear comes back clean and undamaged.
Bookings can be made online up to three months ahead.

Late returns cost 10 euros per day. Renters who buy the same item within a month get the rental fee back.""",
}


@dataclass(frozen=True)
class Question:
    question: str
    document: str
    passage: str  # a phrase from the passage that answers it: a retrieved chunk must contain it
    fact: str  # what a correct answer contains (case-insensitive)


QUESTIONS: list[Question] = [
    Question("How long do I have to send back something I bought?", "returns.md", "within 60 days of delivery", "60"),
    Question("When will the money for my return show up on my card?", "returns.md", "within 5 working days", "5"),
    Question("Do I have to pay to send a return?", "returns.md", "flat fee of 4.95 euros", "4.95"),
    Question("Can I return a gift card?", "returns.md", "Gift cards, opened tins", "cannot"),
    Question("What is the order cut-off time for same-day dispatch?", "shipping.md", "before 3 pm", "3"),
    Question("From what order amount is delivery free?", "shipping.md", "free on orders over 75 euros", "75"),
    Question("How much does next-day express delivery cost?", "shipping.md", "9.95 euros", "9.95"),
    Question("Can you deliver to a post office box?", "shipping.md", "do not ship to P.O. boxes", "not"),
    Question("How many years of warranty does a backpack have?", "warranty.md", "three-year warranty", "three"),
    Question("Where do I send a photo of a broken zip?", "warranty.md", "repairs@northwind.example", "repairs@"),
    Question("Is the battery of my headlamp under warranty?", "warranty.md", "covered for one year", "one year"),
    Question("How long is the password reset link valid?", "account_security.md", "30 minutes", "30"),
    Question("How do I enable two-factor login?", "account_security.md", "two-step verification", "Security"),
    Question(
        "How long do you keep my invoices after I close my account?", "account_security.md", "seven years", "seven"
    ),
    Question("What is a loyalty point worth?", "trail_club.md", "100 points are worth a", "5"),
    Question("When do my Trail Club points expire?", "trail_club.md", "24 months", "24"),
    Question("What time does the Utrecht shop close on Thursday?", "stores.md", "late", "21"),
    Question("Is the Amsterdam store open on Monday?", "stores.md", "closed on Mondays", "closed"),
    Question("What is the customer service phone number?", "stores.md", "+31 30 123 4567", "123 4567"),
    Question("Can I use fabric softener on my rain jacket?", "product_care.md", "never with fabric softener", "never"),
    Question("How should I store a down sleeping bag?", "product_care.md", "uncompressed", "uncompressed"),
    Question("How much does it cost to rent a tent for a weekend?", "rentals.md", "35 euros", "35"),
    Question("How big is the deposit for rented gear?", "rentals.md", "deposit of 100 euros", "100"),
    Question("What happens if I bring a rental back late?", "rentals.md", "10 euros per day", "10"),
]
