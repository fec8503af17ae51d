"""What each page of the app shows, decided without Streamlit: given the model's output, the view settings and
the card, the words, rows and levels a clinician sees. The pages in ``pages/views/`` only lay these out, and the
rules are tested in milliseconds (``tests/screens/``). A layer above ``review`` and ``training``, whose
results the screens put into words."""
