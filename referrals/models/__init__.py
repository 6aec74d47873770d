# The data-protection tables (models/privacy.py) register on the metadata with any model import,
# so Alembic, the tests and the engine see them without a line in models/tables.py.
from referrals.models import privacy as privacy
