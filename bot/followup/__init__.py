"""Did our people answer? Response tracking, reminders and escalation of unanswered leads, and their story."""
