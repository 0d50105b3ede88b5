"""How a message is judged, in one place.

- `language`: the language of the sender's own text (deterministic; "unsure" falls back to the default pool).
- `extract`: who wrote (name, address, company), web-form fields, technical-RFQ signs.
- `cues`: hand-written multilingual phrase lists and structural signs the text model weighs like words.
- `offline`: the offline text model, trained on labelled mail; no network, no key.
- `cascade`: the policy that asks the LLM only when the offline answer is not enough, within a budget.
- `prompt` and `redact`: what the LLM is sent (untrusted mail fenced as data, personal numbers masked).
"""
