"""The hub's default templates, in English and Spanish.

None names the drug (minimum necessary): each says what happened and where to ask. SMS bodies
name the pharmacy first (the patient must know who writes) and, except the sign-in code and the
keyword answers, end with how to stop them. A pharmacy's own templates replace these.
"""

from __future__ import annotations

from collections.abc import Mapping

from .templates import EventKind, NotificationTemplate, TemplateError

K = EventKind
_EN_STOP = " Reply STOP to opt out."
_ES_STOP = " Responda STOP para no recibir mensajes."
_EN_SIGN = "\n\n$pharmacy_name\n$pharmacy_phone\nEmail preferences: $manage_url\n"
_CODE_SIGN = "\n\n$pharmacy_name\n"
_ES_SIGN = "\n\n$pharmacy_name\n$pharmacy_phone\nPreferencias de correo: $manage_url\n"

# kind: (SMS, subject, email text before the signature)
_EN: dict[EventKind, tuple[str, str, str]] = {
    K.PRESCRIPTION_RECEIVED: (
        "$pharmacy_name: we received a new prescription for you. We will text you when it is "
        "ready." + _EN_STOP,
        "We received your prescription",
        "Hello $first_name,\n\nWe received a new prescription for you and are preparing it. "
        "We will let you know when it is ready.",
    ),
    K.NEEDS_PRESCRIBER: (
        "$pharmacy_name: we need to check something with your prescriber before we can fill "
        "your prescription. Questions: $pharmacy_phone." + _EN_STOP,
        "Your prescription is waiting for your prescriber",
        "Hello $first_name,\n\nWe asked your prescriber about your prescription and are waiting "
        "for an answer. We will let you know as soon as we hear back.",
    ),
    K.READY_FOR_PICKUP: (
        "$pharmacy_name: your prescription is ready for pick-up until $pickup_by." + _EN_STOP,
        "Your prescription is ready",
        "Hello $first_name,\n\nYour prescription is ready. Please pick it up by $pickup_by.",
    ),
    K.NOT_COLLECTED: (
        "$pharmacy_name: your prescription is still waiting for you. Please pick it up by "
        "$pickup_by." + _EN_STOP,
        "Reminder: your prescription is waiting",
        "Hello $first_name,\n\nYour prescription is still waiting for you. If it is not picked "
        "up by $pickup_by, it goes back to stock. Call us if you need more time.",
    ),
    K.SHIPPED: (
        "$pharmacy_name: your order has shipped with $carrier. Track it: $tracking_url" + _EN_STOP,
        "Your order has shipped",
        "Hello $first_name,\n\nYour order has shipped with $carrier, tracking number "
        "$tracking_number.\nTrack it: $tracking_url",
    ),
    K.REFILL_DUE: (
        "$pharmacy_name: a refill of your prescription is due on $refill_date. Call "
        "$pharmacy_phone to order it." + _EN_STOP,
        "Your refill is due",
        "Hello $first_name,\n\nA refill of your prescription is due on $refill_date. Call us "
        "to order it.",
    ),
    K.CONSULT_SCHEDULED: (
        "$pharmacy_name: your consultation with a pharmacist is on $consult_time. Join: "
        "$invite_url" + _EN_STOP,
        "Your consultation with a pharmacist",
        "Hello $first_name,\n\nYour video consultation with a pharmacist is on $consult_time."
        "\nJoin it from this link: $invite_url",
    ),
    K.CANCELLED_BY_PRESCRIBER: (
        "$pharmacy_name: your prescriber cancelled a prescription. Questions: $pharmacy_phone."
        + _EN_STOP,
        "A prescription was cancelled",
        "Hello $first_name,\n\nYour prescriber cancelled one of your prescriptions, so we will "
        "not fill it. Please ask your prescriber if you have questions about it.",
    ),
    K.PAYMENT_FAILED: (
        "$pharmacy_name: we could not take your plan's payment of $amount. Please check or "
        "update your card: $pay_url" + _EN_STOP,
        "We could not take your payment",
        "Hello $first_name,\n\nYour bank refused your payment plan's payment of $amount. We "
        "will try again in a few days. To pay now or use another card, go to your page: "
        "$pay_url\nQuestions: call us.",
    ),
    K.SIGN_IN_CODE: (
        "$code is your $pharmacy_name sign-in code. It expires in $minutes minutes. Do not "
        "share it.",
        "Your sign-in code",
        "Your sign-in code is $code. It expires in $minutes minutes.\n\nIf you did not try to "
        "sign in, you can ignore this message. Never share this code.",
    ),
}
_EN_SMS_ONLY = {
    K.OPTED_OUT: "$pharmacy_name: you will not get more texts from us. Reply START to "
    "subscribe again.",
    K.OPTED_IN: "$pharmacy_name: you will get texts about your prescriptions again. Reply "
    "STOP to opt out.",
    K.HELP: "$pharmacy_name: prescription updates. Call $pharmacy_phone for help. Msg & data "
    "rates may apply. Reply STOP to opt out.",
}

_ES: dict[EventKind, tuple[str, str, str]] = {
    K.PRESCRIPTION_RECEIVED: (
        "$pharmacy_name: recibimos una receta nueva para usted. Le avisaremos cuando esté "
        "lista." + _ES_STOP,
        "Recibimos su receta",
        "Hola, $first_name:\n\nRecibimos una receta nueva para usted y la estamos preparando. "
        "Le avisaremos cuando esté lista.",
    ),
    K.NEEDS_PRESCRIBER: (
        "$pharmacy_name: debemos consultar algo con su médico antes de preparar su receta. "
        "Preguntas: $pharmacy_phone." + _ES_STOP,
        "Su receta espera la respuesta de su médico",
        "Hola, $first_name:\n\nConsultamos a su médico sobre su receta y esperamos su "
        "respuesta. Le avisaremos en cuanto la recibamos.",
    ),
    K.READY_FOR_PICKUP: (
        "$pharmacy_name: su receta está lista. Puede recogerla hasta el $pickup_by." + _ES_STOP,
        "Su receta está lista",
        "Hola, $first_name:\n\nSu receta está lista. Recójala antes del $pickup_by, por favor.",
    ),
    K.NOT_COLLECTED: (
        "$pharmacy_name: su receta todavía le espera. Recójala antes del $pickup_by." + _ES_STOP,
        "Recordatorio: su receta le espera",
        "Hola, $first_name:\n\nSu receta todavía le espera. Si no la recoge antes del "
        "$pickup_by, volverá al inventario. Llámenos si necesita más tiempo.",
    ),
    K.SHIPPED: (
        "$pharmacy_name: enviamos su pedido con $carrier. Sígalo aquí: $tracking_url" + _ES_STOP,
        "Enviamos su pedido",
        "Hola, $first_name:\n\nEnviamos su pedido con $carrier, número de seguimiento "
        "$tracking_number.\nSígalo aquí: $tracking_url",
    ),
    K.REFILL_DUE: (
        "$pharmacy_name: le toca resurtir su receta el $refill_date. Llame al $pharmacy_phone "
        "para pedirla." + _ES_STOP,
        "Le toca resurtir su receta",
        "Hola, $first_name:\n\nLe toca resurtir su receta el $refill_date. Llámenos para pedirla.",
    ),
    K.CONSULT_SCHEDULED: (
        "$pharmacy_name: su consulta con un farmacéutico es el $consult_time. Entre aquí: "
        "$invite_url" + _ES_STOP,
        "Su consulta con un farmacéutico",
        "Hola, $first_name:\n\nSu consulta por video con un farmacéutico es el $consult_time."
        "\nEntre desde este enlace: $invite_url",
    ),
    K.CANCELLED_BY_PRESCRIBER: (
        "$pharmacy_name: su médico canceló una receta. Preguntas: $pharmacy_phone." + _ES_STOP,
        "Se canceló una receta",
        "Hola, $first_name:\n\nSu médico canceló una de sus recetas, así que no la "
        "prepararemos. Si tiene preguntas sobre ella, consulte a su médico.",
    ),
    K.PAYMENT_FAILED: (
        "$pharmacy_name: no pudimos cobrar el pago de su plan por $amount. Revise o cambie su "
        "tarjeta: $pay_url" + _ES_STOP,
        "No pudimos cobrar su pago",
        "Hola, $first_name:\n\nSu banco rechazó el pago de su plan por $amount. Lo "
        "intentaremos de nuevo en unos días. Para pagar ahora o usar otra tarjeta, entre en su "
        "página: $pay_url\nSi tiene preguntas, llámenos.",
    ),
    K.SIGN_IN_CODE: (
        "$code es su código para entrar en $pharmacy_name. Vence en $minutes minutos. No lo "
        "comparta.",
        "Su código para entrar",
        "Su código para entrar es $code. Vence en $minutes minutos.\n\nSi no intentó entrar, "
        "ignore este mensaje. No comparta este código con nadie.",
    ),
}
_ES_SMS_ONLY = {
    K.OPTED_OUT: "$pharmacy_name: no recibirá más mensajes nuestros. Responda START para "
    "recibirlos de nuevo.",
    K.OPTED_IN: "$pharmacy_name: volverá a recibir mensajes sobre sus recetas. Responda STOP "
    "para no recibirlos.",
    K.HELP: "$pharmacy_name: avisos de recetas. Ayuda: $pharmacy_phone. Pueden aplicarse "
    "tarifas de mensajes y datos. Responda STOP para no recibirlos.",
}


def _build(
    language: str,
    texts: Mapping[EventKind, tuple[str, str, str]],
    sms_only: Mapping[EventKind, str],
    signature: str,
) -> dict[tuple[EventKind, str], NotificationTemplate]:
    built = {
        # a sign-in code is not a subscription: no preferences link under it
        (kind, language): NotificationTemplate(
            kind,
            language,
            sms,
            subject,
            body + (_CODE_SIGN if kind is K.SIGN_IN_CODE else signature),
        )
        for kind, (sms, subject, body) in texts.items()
    }
    built |= {
        (kind, language): NotificationTemplate(kind, language, sms)
        for kind, sms in sms_only.items()
    }
    return built


#: the defaults, by kind and language
DEFAULT_TEMPLATES: Mapping[tuple[EventKind, str], NotificationTemplate] = _build(
    "en", _EN, _EN_SMS_ONLY, _EN_SIGN
) | _build("es", _ES, _ES_SMS_ONLY, _ES_SIGN)
LANGUAGES = ("en", "es")


#: the ``refill_due`` text when no refill remains: the pharmacy asks the prescriber for a
#: renewal (the same kind: the patient's and pharmacy's ``refill_due`` switches decide it)
_RENEWAL: Mapping[str, tuple[str, str, str, str]] = {
    "en": (
        "$pharmacy_name: your prescription runs out on $refill_date and has no refills left. "
        "We will ask your prescriber to renew it." + _EN_STOP,
        "Your prescription needs renewing",
        "Hello $first_name,\n\nYour prescription runs out on $refill_date and has no refills "
        "left. We will ask your prescriber to renew it and let you know when it is ready.",
        _EN_SIGN,
    ),
    "es": (
        "$pharmacy_name: su receta se acaba el $refill_date y no le quedan resurtidos. "
        "Pediremos a su médico que la renueve." + _ES_STOP,
        "Su receta necesita renovarse",
        "Hola, $first_name:\n\nSu receta se acaba el $refill_date y no le quedan resurtidos. "
        "Pediremos a su médico que la renueve y le avisaremos cuando esté lista.",
        _ES_SIGN,
    ),
}


def renewal_template(language: str = "en") -> NotificationTemplate:
    """The ``refill_due`` template of a prescription without refills left (a renewal is
    asked of the prescriber), in ``language``, else in English."""
    sms, subject, body, signature = _RENEWAL.get(language) or _RENEWAL["en"]
    return NotificationTemplate(
        K.REFILL_DUE, language if language in _RENEWAL else "en", sms, subject, body + signature
    )


def default_template(kind: EventKind | str, language: str = "en") -> NotificationTemplate:
    """The default template of ``kind`` in ``language``, else in English."""
    kind = EventKind(kind)
    found = DEFAULT_TEMPLATES.get((kind, language)) or DEFAULT_TEMPLATES.get((kind, "en"))
    if found is None:
        raise TemplateError(f"no default template for {kind}")
    return found
