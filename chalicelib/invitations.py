"""The portal invitation email: a link whose `token` query parameter is the single-use invitation token."""
from __future__ import annotations

import os
from urllib.parse import urlencode

from chalicelib.domain.contacts import Contact, invitation_token
from chalicelib.mail import OutgoingEmail, send

DEFAULT_PORTAL_URL = "https://portal.nexusrms.io/invitations/accept"
DEFAULT_SENDER = "no-reply@nexusrms.io"


def send_portal_invitation(contact: Contact, secret: str, sending_address: str | None) -> str:
    """Email the invitation to the contact from the tenant's sending address; answers the Message-ID."""
    token = invitation_token(contact.tenant_id, contact.client_id, contact.id, secret)
    link = f"{os.environ.get('PORTAL_URL', DEFAULT_PORTAL_URL)}?{urlencode({'token': token})}"
    text = (f"Hello {contact.first_name or contact.full_name},\n\n"
            f"You have been invited to the NexusRMS client portal, where you can see your quotes, invoices and "
            f"messages.\n\nAccept the invitation within 7 days:\n{link}\n\n"
            f"If you did not expect this email, you can ignore it.\n")
    email = OutgoingEmail(from_address=sending_address or DEFAULT_SENDER, to=[contact.email],
                          subject="Your invitation to the NexusRMS client portal", text=text)
    return send(email).message_id
