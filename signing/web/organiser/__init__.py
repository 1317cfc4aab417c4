"""The organisers' area: sign-in with two-factor, petitions, paper, moderation, shredding."""
