"""Open Referral HSDS 3.1: the partner directory out as JSON, and a directory file back in.

The file is one JSON object: `organizations` (HSDS organization objects, with their contacts,
locations, addresses and schedules nested) and `services` (HSDS service objects, with their
service areas, service-at-locations and capacities). What HSDS has no field for travels as
attributes whose `link_type` starts with `referrals_`: a partner's kind, a service's pathway, a
location's key and area, a contact's rank, language, SMS and quiet-hour settings.

Ids are UUIDv5 of the province and our keys, so every export of the same directory carries the
same ids, and other systems can follow an organisation from one export to the next.

The package: `export.py` writes the file from our tables, `read.py` reads one back (onto
partners.yaml, with `schema.py`'s models of what it reads), and `shared.py` holds what both use
(the version, the ids, the capacity words). Every name stays importable from here.
"""

from __future__ import annotations

from referrals.interop.hsds.export import export_directory
from referrals.interop.hsds.read import ADMINISTRATIVE, DirectoryError, Incoming, read_directory
from referrals.interop.hsds.schema import (
    InAddress,
    InAttribute,
    InCapacity,
    InContact,
    InDirectory,
    InLocation,
    InOrganization,
    InPhone,
    InSchedule,
    InService,
    InServiceArea,
    InServiceAtLocation,
)
from referrals.interop.hsds.shared import CAPACITY, HSDS_VERSION, NAMESPACE, UNIT, hsds_id, urn

__all__ = [
    "ADMINISTRATIVE",
    "CAPACITY",
    "HSDS_VERSION",
    "NAMESPACE",
    "UNIT",
    "DirectoryError",
    "InAddress",
    "InAttribute",
    "InCapacity",
    "InContact",
    "InDirectory",
    "InLocation",
    "InOrganization",
    "InPhone",
    "InSchedule",
    "InService",
    "InServiceArea",
    "InServiceAtLocation",
    "Incoming",
    "export_directory",
    "hsds_id",
    "read_directory",
    "urn",
]
